"""Chat apps: end users, conversations, messages, agent thoughts, feedback; datasets.

Revision ID: 0004_chat
Revises: 0001_apps
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opstrail.storage.base import UTCDateTime

revision = "0004_chat"
down_revision = "0001_apps"
branch_labels = None
depends_on = None


def _fk_app() -> sa.Column:
    return sa.Column(
        "app_id", sa.String(36), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "end_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        _fk_app(),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("app_id", "session_id", name="uq_end_users_app_session"),
    )
    op.create_index("ix_end_users_tenant_id", "end_users", ["tenant_id"])
    op.create_index("ix_end_users_app_id", "end_users", ["app_id"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), primary_key=True),
        _fk_app(),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("introduction", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("from_source", sa.String(16), nullable=False),
        sa.Column("from_end_user_id", sa.String(36), nullable=True),
        sa.Column("from_account_id", sa.String(36), nullable=True),
        sa.Column("dialogue_count", sa.Integer(), nullable=False),
        sa.Column("name_generations", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_conversations_app_id", "conversations", ["app_id"])
    op.create_index("ix_conversations_from_end_user_id", "conversations", ["from_end_user_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(36), primary_key=True),
        _fk_app(),
        sa.Column(
            "conversation_id",
            sa.String(36),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_provider", sa.String(255), nullable=False),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("message_tokens", sa.Integer(), nullable=False),
        sa.Column("answer_tokens", sa.Integer(), nullable=False),
        sa.Column("total_price", sa.Numeric(20, 7), nullable=True),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("latency", sa.Float(), nullable=False),
        sa.Column("suggested_questions", sa.JSON(), nullable=False),
        sa.Column("retriever_resources", sa.JSON(), nullable=False),
        sa.Column("agent_based", sa.Boolean(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("external_trace_id", sa.String(128), nullable=True),
        sa.Column("workflow_run_id", sa.String(36), nullable=True),
        sa.Column("from_source", sa.String(16), nullable=False),
        sa.Column("from_end_user_id", sa.String(36), nullable=True),
        sa.Column("from_account_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    for column in ("app_id", "conversation_id", "trace_id", "from_end_user_id", "created_at"):
        op.create_index(f"ix_messages_{column}", "messages", [column])
    op.create_table(
        "message_agent_thoughts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "message_id", sa.String(36), sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("thought", sa.Text(), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("tool_input", sa.Text(), nullable=False),
        sa.Column("observation", sa.Text(), nullable=False),
        sa.Column("message_tokens", sa.Integer(), nullable=False),
        sa.Column("answer_tokens", sa.Integer(), nullable=False),
        sa.Column("total_price", sa.Numeric(20, 7), nullable=True),
        sa.Column("latency", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_message_agent_thoughts_message_id", "message_agent_thoughts", ["message_id"])
    op.create_table(
        "message_feedbacks",
        sa.Column("id", sa.String(36), primary_key=True),
        _fk_app(),
        sa.Column(
            "message_id", sa.String(36), sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("conversation_id", sa.String(36), nullable=True),
        sa.Column("rating", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("from_source", sa.String(16), nullable=False),
        sa.Column("from_end_user_id", sa.String(36), nullable=True),
        sa.Column("from_account_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("message_id", "from_source", name="uq_message_feedbacks_message_source"),
    )
    op.create_index("ix_message_feedbacks_app_id", "message_feedbacks", ["app_id"])

    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_datasets_tenant_id", "datasets", ["tenant_id"])
    op.create_table(
        "dataset_documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("char_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dataset_documents_dataset_id", "dataset_documents", ["dataset_id"])
    op.create_table(
        "dataset_chunks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "document_id", sa.String(36),
            sa.ForeignKey("dataset_documents.id", ondelete="CASCADE"), nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dataset_chunks_dataset_id", "dataset_chunks", ["dataset_id"])
    op.create_index("ix_dataset_chunks_document_id", "dataset_chunks", ["document_id"])
    op.create_table(
        "app_dataset_links",
        sa.Column("id", sa.String(36), primary_key=True),
        _fk_app(),
        sa.Column("dsl_dataset_id", sa.String(255), nullable=False),
        sa.Column(
            "dataset_id", sa.String(36), sa.ForeignKey("datasets.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.UniqueConstraint("app_id", "dsl_dataset_id", name="uq_app_dataset_links_app_dsl"),
    )
    op.create_index("ix_app_dataset_links_app_id", "app_dataset_links", ["app_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # Rows are written by storage.repos.datasets next to each chunk insert/delete.
        op.execute(
            "CREATE VIRTUAL TABLE dataset_chunks_fts USING fts5("
            "content, chunk_id UNINDEXED, dataset_id UNINDEXED, tokenize='unicode61')"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_dataset_chunks_fts ON dataset_chunks "
            "USING GIN (to_tsvector('simple', content))"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS dataset_chunks_fts")
    for table in (
        "app_dataset_links", "dataset_chunks", "dataset_documents", "datasets",
        "message_feedbacks", "message_agent_thoughts", "messages", "conversations", "end_users",
    ):
        op.drop_table(table)

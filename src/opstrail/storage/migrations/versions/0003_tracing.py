"""Per-app tracing switch and policy, and provider configurations (encrypted secrets).

Revision ID: 0003_tracing
Revises: 0001_apps
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opstrail.storage.base import UTCDateTime

revision = "0003_tracing"
down_revision = "0001_apps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_tracing",
        sa.Column(
            "app_id",
            sa.String(36),
            sa.ForeignKey("apps.id", ondelete="CASCADE", name="fk_app_tracing_app_id_apps"),
            primary_key=True,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("content_mode", sa.String(16), nullable=False),
        sa.Column("mask_patterns_json", sa.Text(), nullable=True),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "tracing_provider_configs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "app_id",
            sa.String(36),
            sa.ForeignKey(
                "apps.id", ondelete="CASCADE", name="fk_tracing_provider_configs_app_id_apps"
            ),
            nullable=False,
        ),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("settings_json", sa.Text(), nullable=False),
        sa.Column("secrets_ciphertext", sa.Text(), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("project_name", sa.String(255), nullable=True),
        sa.Column("project_url", sa.Text(), nullable=True),
        sa.Column("server_version", sa.String(64), nullable=True),
        sa.Column("ingestion_path", sa.String(16), nullable=True),
        sa.Column("server_warning", sa.Text(), nullable=True),
        sa.Column("validated_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("app_id", "provider", name="uq_tracing_provider_configs_app_provider"),
    )
    op.create_index("ix_tracing_provider_configs_app_id", "tracing_provider_configs", ["app_id"])


def downgrade() -> None:
    op.drop_table("tracing_provider_configs")
    op.drop_table("app_tracing")

"""Delivery outbox, acknowledgements, per-app delivery state, dispatcher lease.

Revision ID: 0002_outbox
Revises: 0001_apps
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opstrail.storage.base import UTCDateTime

revision = "0002_outbox"
down_revision = "0001_apps"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("score_id", sa.String(32), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("payload_bytes", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("destination_key", sa.String(512), nullable=True),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("last_error_message", sa.Text(), nullable=True),
        sa.Column("observation_count", sa.Integer(), nullable=True),
    )
    op.create_index("ix_outbox_trace_id", "outbox", ["trace_id"])
    op.create_index("ix_outbox_score_id", "outbox", ["score_id"])
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_app_state", "outbox", ["app_id", "state"])
    op.create_table(
        "outbox_acks",
        sa.Column("destination_key", sa.String(512), primary_key=True),
        sa.Column("outbox_id", RowId, primary_key=True),
        sa.Column("acked_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "app_delivery_state",
        sa.Column("app_id", sa.String(36), primary_key=True),
        sa.Column("destination_key", sa.String(512), nullable=True),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_until", UTCDateTime(), nullable=True),
        sa.Column("credentials_fingerprint", sa.String(64), nullable=True),
        sa.Column("server_version", sa.String(64), nullable=True),
        sa.Column("path", sa.String(16), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("last_error_message", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "dispatcher_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dispatcher_leases")
    op.drop_table("app_delivery_state")
    op.drop_table("outbox_acks")
    op.drop_table("outbox")

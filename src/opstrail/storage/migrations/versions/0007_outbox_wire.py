"""Outbox traces encoded as they are recorded, in a table of their own.

A routed trace is stored twice: its trace info (``outbox_payloads``, the source of truth, kept
for ``opstrail export``) and its spans already in the wire format of its exporter
(``outbox_wire``), which the dispatcher frames into requests without decoding, building or
encoding. The wire body is dropped once the row reaches a final state. Rows without one
(older rows, unrouted rows, bodies of an older format) are built from their trace info as
before. No foreign key, for the reason given in 0006.

Revision ID: 0007_outbox_wire
Revises: 0006_outbox_payloads
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_wire"
down_revision = "0006_outbox_payloads"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_wire",
        sa.Column("outbox_id", RowId, primary_key=True),
        sa.Column("wire_format", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("observation_count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    # Nothing is lost: every wire body has its trace info in outbox_payloads.
    op.drop_table("outbox_wire")

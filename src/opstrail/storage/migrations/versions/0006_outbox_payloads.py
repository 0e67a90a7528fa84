"""Outbox trace info in a table of its own.

The dispatcher updates each outbox row twice (claim, outcome). With the trace info (about
20 KB for a 20-node workflow) in the same row, SQLite re-wrote the whole record and its
overflow pages on every update; a separate table keeps those updates small. Existing payloads
are moved, nothing is lost; the downgrade moves them back. No foreign key: with SQLite's
foreign keys on, the batch re-creation of ``outbox`` below drops that table, and a cascading
key would delete the payloads just copied.

Revision ID: 0006_outbox_payloads
Revises: 0002_outbox
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox_payloads"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_payloads",
        sa.Column("outbox_id", RowId, primary_key=True),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.execute(
        "INSERT INTO outbox_payloads (outbox_id, payload) "
        "SELECT id, payload FROM outbox WHERE payload IS NOT NULL"
    )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("payload")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
    op.execute(
        "UPDATE outbox SET payload = (SELECT p.payload FROM outbox_payloads p "
        "WHERE p.outbox_id = outbox.id)"
    )
    op.drop_table("outbox_payloads")

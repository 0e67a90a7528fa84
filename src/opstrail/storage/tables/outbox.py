"""The delivery outbox: one row per root trace record or score, plus acknowledgements, the
per-app delivery state and the single-dispatcher lease.

Rows are written in the caller's transaction (``opstrail.delivery.outbox``) and claimed by a
dispatcher with a lease (``lease_owner``/``lease_until``): a crashed dispatcher's rows become
due again when the lease expires. Nothing here is ever deleted silently: rows that cannot be
delivered end ``dead`` with the reason.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opstrail.storage.base import Base, UTCDateTime, utcnow


class OutboxState(StrEnum):
    """Life cycle of an outbox row."""

    PENDING = "pending"  # due, never tried
    RETRYING = "retrying"  # tried, failed transiently or paused; due at next_attempt_at
    DELIVERED = "delivered"  # acknowledged by its destination
    DEAD = "dead"  # given up, with the reason; ``opstrail export`` can re-send
    CANCELLED = "cancelled"  # superseded (a newer rating) or cancelled by a config change
    UNROUTED = "unrouted"  # recorded while tracing was off; only ``opstrail export`` sends it


# States the dispatcher works on.
DUE_STATES = (OutboxState.PENDING.value, OutboxState.RETRYING.value)
# States a row never leaves by itself (``opstrail export`` re-sends from the trace info).
FINAL_STATES = tuple(
    state.value for state in OutboxState if state.value not in DUE_STATES
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
RowId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxRow(Base):
    """One trace (or score) waiting for, or done with, delivery.

    ``state`` is one of ``pending``, ``retrying``, ``delivered``, ``dead``, ``cancelled``,
    ``unrouted`` (recorded while tracing was not configured or disabled: never sent by the
    dispatcher, only by ``opstrail export``). ``payload`` is the policy-applied trace info as
    JSON (``opstrail.delivery.codec``), stored in ``OutboxPayload``; it is pruned after the
    retention period once delivered (``payload`` then reads ``None``).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    score_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    payload_bytes: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the row last became due: recorded, or queued again by `opstrail export`. The age
    # limit and the delivery latency count from here.
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    destination_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    observation_count: Mapped[int | None] = mapped_column(Integer, nullable=True)

    payload_row: Mapped[OutboxPayload | None] = relationship(
        primaryjoin="OutboxRow.id == foreign(OutboxPayload.outbox_id)",
        cascade="all, delete-orphan",
    )
    payload: AssociationProxy[str | None] = association_proxy(
        "payload_row", "payload", creator=lambda text: OutboxPayload(payload=text)
    )

    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_app_state", "app_id", "state"),
    )


class OutboxPayload(Base):
    """The stored trace info of one outbox row, written once and only read afterwards.

    It lives apart from ``OutboxRow`` because the dispatcher updates every row twice (the
    claim, then the outcome): with about 20 KB of trace info inline, SQLite re-wrote the whole
    record and its overflow pages on each update, which cost about 30 times a small row's
    update (docs/benchmarks.md). Pruning deletes the row here.

    No foreign key on purpose: SQLite applies ``ON DELETE`` actions when a table is dropped,
    and Alembic's batch mode drops and re-creates ``outbox`` to alter it, so a cascading key
    would delete every payload in such a migration. Outbox rows are never deleted.
    """

    __tablename__ = "outbox_payloads"

    outbox_id: Mapped[int] = mapped_column(RowId, primary_key=True)
    payload: Mapped[str] = mapped_column(Text)


class OutboxWire(Base):
    """A routed trace's spans already in its exporter's wire format (``EncodedTrace``),
    written in the same transaction as its outbox row; the dispatcher sends the body as it is.

    Deleted when the row reaches a final state (the trace info stays in ``OutboxPayload``).
    No foreign key, as for ``OutboxPayload``.
    """

    __tablename__ = "outbox_wire"

    outbox_id: Mapped[int] = mapped_column(RowId, primary_key=True)
    wire_format: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    observation_count: Mapped[int] = mapped_column(Integer)


class OutboxAck(Base):
    """A destination (host + project id) acknowledged this outbox row: never re-send it there."""

    __tablename__ = "outbox_acks"

    destination_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(RowId, primary_key=True)
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppDeliveryState(Base):
    """What the dispatcher last learnt about an app's destination.

    ``state`` is ``ok``, ``unauthorized``, ``unreachable`` or ``error``. A paused app
    (``unauthorized``, or ``error`` for a suspended ingestion) keeps its rows; the pause lifts
    when the credentials change (``credentials_fingerprint``) or at ``paused_until`` (a probe).
    """

    __tablename__ = "app_delivery_state"

    app_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    destination_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    paused: Mapped[bool] = mapped_column(default=False)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    credentials_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    server_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DispatcherLease(Base):
    """A named exclusive lease. On SQLite one dispatcher holds ``sqlite-dispatcher``, so
    ``serve`` and ``opstrail worker`` never both send."""

    __tablename__ = "dispatcher_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)

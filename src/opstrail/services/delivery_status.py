"""Per-app delivery health and the delivery state of one trace. Reads only; no network.

Counts are traces (outbox rows, scores included). The destination state is what the
dispatcher last learnt (``ok``, ``unauthorized``, ``unreachable``, ``error``), or ``None``
before the first attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opstrail.delivery.codec import KIND_SCORE
from opstrail.storage.repos import outbox as repo
from opstrail.storage.tables.outbox import DUE_STATES, AppDeliveryState, OutboxRow, OutboxState

DestinationState = Literal["ok", "unauthorized", "unreachable", "error"]


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """An app's delivery health.

    ``pending`` counts rows never tried, ``retrying`` rows tried and waiting (paused ones
    too), ``dead`` rows given up, ``unrouted`` rows recorded while tracing was off.
    """

    app_id: str
    delivered: int
    pending: int
    retrying: int
    dead: int
    unrouted: int
    cancelled: int
    last_success_at: datetime | None
    last_error_code: str | None
    last_error_message: str | None
    state: DestinationState | None
    paused: bool
    server_version: str | None
    path: str | None
    destination_key: str | None
    oldest_waiting_at: datetime | None

    @property
    def backlog(self) -> int:
        """Rows still to deliver."""
        return self.pending + self.retrying


@dataclass(frozen=True, slots=True)
class TraceDelivery:
    """Where one trace stands: ``pending``, ``delivered`` or ``failed`` (with the reason)."""

    trace_id: str
    state: Literal["pending", "delivered", "failed"]
    reason: str | None
    attempts: int
    delivered_at: datetime | None
    destination_key: str | None
    next_attempt_at: datetime | None


def delivery_status(session: Session, app_id: str) -> DeliveryStatus:
    """The delivery health of ``app_id`` (zero counts for an app that never recorded)."""
    counts = repo.state_counts(session, app_id)
    state_row = session.get(AppDeliveryState, app_id)
    oldest = session.scalar(
        select(func.min(OutboxRow.created_at)).where(
            OutboxRow.app_id == app_id, OutboxRow.state.in_(DUE_STATES)
        )
    )
    destination_state = state_row.state if state_row else None
    return DeliveryStatus(
        app_id=app_id,
        delivered=counts.get(OutboxState.DELIVERED.value, 0),
        pending=counts.get(OutboxState.PENDING.value, 0),
        retrying=counts.get(OutboxState.RETRYING.value, 0),
        dead=counts.get(OutboxState.DEAD.value, 0),
        unrouted=counts.get(OutboxState.UNROUTED.value, 0),
        cancelled=counts.get(OutboxState.CANCELLED.value, 0),
        last_success_at=state_row.last_success_at if state_row else None,
        last_error_code=state_row.last_error_code if state_row else None,
        last_error_message=state_row.last_error_message if state_row else None,
        state=destination_state if destination_state in _STATES else None,  # type: ignore[arg-type]
        paused=bool(state_row and state_row.paused),
        server_version=state_row.server_version if state_row else None,
        path=state_row.path if state_row else None,
        destination_key=state_row.destination_key if state_row else None,
        oldest_waiting_at=oldest,
    )


_STATES = ("ok", "unauthorized", "unreachable", "error")


def trace_delivery(session: Session, trace_id: str) -> TraceDelivery | None:
    """The delivery state of one trace (its root records; scores are not counted), or
    ``None`` when no record of that trace id exists.

    A trace is ``delivered`` when every record of it was acknowledged, ``failed`` when one was
    dead-lettered, cancelled or recorded while tracing was off, ``pending`` otherwise.
    """
    rows = list(
        session.scalars(
            select(OutboxRow)
            .where(OutboxRow.trace_id == trace_id, OutboxRow.kind != KIND_SCORE)
            .order_by(OutboxRow.id)
        )
    )
    if not rows:
        return None
    latest = rows[-1]
    failed = [r for r in rows if r.state in _FAILED]
    waiting = [r for r in rows if r.state in DUE_STATES]
    if failed:
        row = failed[-1]
        reason = _FAILED[row.state]
        detail = row.last_error_message or row.last_error_code
        return TraceDelivery(
            trace_id=trace_id,
            state="failed",
            reason=f"{reason}: {detail}" if detail else reason,
            attempts=row.attempts,
            delivered_at=None,
            destination_key=row.destination_key,
            next_attempt_at=None,
        )
    if waiting:
        row = waiting[0]
        return TraceDelivery(
            trace_id=trace_id,
            state="pending",
            reason=row.last_error_message or row.last_error_code,
            attempts=row.attempts,
            delivered_at=None,
            destination_key=row.destination_key,
            next_attempt_at=row.next_attempt_at,
        )
    return TraceDelivery(
        trace_id=trace_id,
        state="delivered",
        reason=None,
        attempts=latest.attempts,
        delivered_at=latest.delivered_at,
        destination_key=latest.destination_key,
        next_attempt_at=None,
    )


_FAILED = {
    OutboxState.DEAD.value: "dead-lettered",
    OutboxState.CANCELLED.value: "cancelled",
    OutboxState.UNROUTED.value: "tracing was not configured or disabled",
}

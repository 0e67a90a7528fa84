"""Writing to the outbox, inside the caller's transaction, with no network.

``enqueue_trace``/``enqueue_score`` insert a row in the caller's transaction: it exists if
and only if that transaction commits (a rollback leaves nothing to send). The dispatcher
(``opstrail.delivery.dispatcher``) picks rows up after the commit. Its INSERTs run on the
driver's cursor rather than as ORM objects or Core executions: they are on the request path.

A trace may come with its spans already encoded for its exporter (``EncodedTrace``): they are
stored beside the trace info (``outbox_wire``) and sent as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, cast

from sqlalchemy import Connection, Insert, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from opstrail.delivery import codec
from opstrail.exporters.base import EncodedTrace
from opstrail.ids import score_id as make_score_id
from opstrail.storage.base import utcnow
from opstrail.storage.driver_sql import driver_statement
from opstrail.storage.repos import outbox as repo
from opstrail.storage.tables.outbox import (
    DUE_STATES,
    OutboxPayload,
    OutboxRow,
    OutboxState,
    OutboxWire,
)
from opstrail.tracing.info import FeedbackInfo, RootTraceInfo
from opstrail.tracing.policy import feedback_trace_id, root_trace_id

_TABLE = cast(Table, OutboxRow.__table__)
_ROW_COLUMNS: Final = (
    "app_id", "kind", "trace_id", "score_id", "payload_bytes", "state", "attempts",
    "next_attempt_at", "created_at", "queued_at", "updated_at",
)
# The three INSERTs of a recorded trace run on the driver's own cursor in the caller's
# transaction (``storage.driver_sql``): this is the request path of every run, where a Core
# execution costs about 40 µs more per statement than the statement itself.


def _insert_into(table: Table, columns: Sequence[str]) -> Insert:
    # Typed parameters: their type's bind processing (UTC timestamps) runs on the driver path.
    return insert(table).values(
        {name: bindparam(name, type_=table.c[name].type) for name in columns}
    )


_INSERT_ROW: Final = _insert_into(_TABLE, _ROW_COLUMNS)
_INSERT_ROW_RETURNING: Final = _INSERT_ROW.returning(_TABLE.c.id)
_INSERT_PAYLOAD: Final = _insert_into(
    cast(Table, OutboxPayload.__table__), ("outbox_id", "payload")
)
_INSERT_WIRE: Final = _insert_into(
    cast(Table, OutboxWire.__table__),
    ("outbox_id", "wire_format", "body", "observation_count"),
)


# A body encoded after its row committed is stored only while the row is as it was recorded:
# still pending, never tried, claimed or re-queued. A dispatcher that already holds the row
# builds it itself, and ``opstrail export`` re-queues under the current policy, so a late
# body must not land there.
_WIRE_IF_FRESH: Final = insert(cast(Table, OutboxWire.__table__)).from_select(
    ["outbox_id", "wire_format", "body", "observation_count"],
    select(
        bindparam("outbox_id", type_=OutboxWire.outbox_id.type),
        bindparam("wire_format", type_=OutboxWire.wire_format.type),
        bindparam("body", type_=OutboxWire.body.type),
        bindparam("observation_count", type_=OutboxWire.observation_count.type),
    ).where(
        # FOR SHARE (PostgreSQL; SQLite has one writer anyway): a claim, cancel or re-queue
        # of the row in progress is waited for, and the conditions are checked on its result.
        select(OutboxRow.id)
        .where(
            OutboxRow.id == bindparam("row_id", type_=OutboxRow.id.type),
            OutboxRow.trace_id == bindparam("trace_id", type_=OutboxRow.trace_id.type),
            OutboxRow.state == OutboxState.PENDING.value,
            OutboxRow.attempts == 0,
            OutboxRow.lease_owner.is_(None),
            OutboxRow.last_error_code.is_(None),
        )
        .with_for_update(read=True)
        .exists()
    ),
)


_WIRE_IF_FRESH_RETURNING: Final = _WIRE_IF_FRESH.returning(OutboxWire.outbox_id)


def store_encoded(connection: Connection, encoded: Sequence[tuple[int, EncodedTrace]]) -> int:
    """Store bodies encoded after their rows committed (``(outbox id, body)`` pairs), each
    only if its row still holds that trace, untouched since it was recorded; the others are
    skipped (their dispatcher builds them from the trace info). In the caller's
    transaction; returns how many were stored."""
    stored = 0
    # One statement per body, so that its answer says whether the row took it (RETURNING
    # where the database has it; SQLite before 3.35 has a reliable row count).
    returning = connection.dialect.insert_returning
    statement = driver_statement(
        _WIRE_IF_FRESH_RETURNING if returning else _WIRE_IF_FRESH, connection.dialect
    )
    for row_id, body in encoded:
        with statement.execute(connection, {
            "outbox_id": row_id, "row_id": row_id, "trace_id": body.trace_id,
            "wire_format": body.wire_format, "body": body.body,
            "observation_count": body.observations,
        }) as cursor:
            stored += len(cursor.fetchall()) if returning else max(cursor.rowcount, 0)
    return stored


def enqueue_trace(
    session: Session,
    info: RootTraceInfo,
    *,
    routed: bool = True,
    encoded: EncodedTrace | None = None,
    now: datetime | None = None,
) -> int:
    """Insert the outbox row of one root trace record in the caller's transaction.

    Args:
        session: the caller's session; the row commits or rolls back with the caller.
        info: the policy-applied record.
        routed: ``False`` stores the row ``unrouted`` (tracing not configured or disabled):
            kept for ``opstrail export``, never sent by the dispatcher.
        encoded: the trace built from ``info`` and encoded for its exporter, to send as it
            is; ignored for an unrouted row.
        now: the clock, for tests.

    Returns:
        The new row's id.
    """
    trace_id = root_trace_id(info)
    if encoded is not None and encoded.trace_id != trace_id:
        raise ValueError(f"encoded trace {encoded.trace_id} is not trace {trace_id}")
    return _insert(
        session,
        app_id=info.context.app_id,
        kind=codec.kind_of(info),
        trace_id=trace_id,
        score_id=None,
        payload=codec.encode(info),
        routed=routed,
        encoded=encoded if routed else None,
        now=now,
    )


def _insert(
    session: Session,
    *,
    app_id: str,
    kind: str,
    trace_id: str,
    score_id: str | None,
    payload: str,
    routed: bool,
    now: datetime | None,
    encoded: EncodedTrace | None = None,
) -> int:
    moment = now or utcnow()
    values = {
        "app_id": app_id,
        "kind": kind,
        "trace_id": trace_id,
        "score_id": score_id,
        "payload_bytes": len(payload),
        "state": (OutboxState.PENDING if routed else OutboxState.UNROUTED).value,
        "attempts": 0,
        "next_attempt_at": moment,
        "created_at": moment,
        "queued_at": moment,
        "updated_at": moment,
    }
    connection = session.connection()
    dialect = connection.dialect
    if dialect.insert_returning:
        with driver_statement(_INSERT_ROW_RETURNING, dialect).execute(connection, values) as c:
            row_id = int(c.fetchone()[0])
    else:  # SQLite before 3.35
        with driver_statement(_INSERT_ROW, dialect).execute(connection, values) as c:
            row_id = int(c.lastrowid)
    driver_statement(_INSERT_PAYLOAD, dialect).run(
        connection, {"outbox_id": row_id, "payload": payload}
    )
    if encoded is not None:
        driver_statement(_INSERT_WIRE, dialect).run(connection, {
            "outbox_id": row_id, "wire_format": encoded.wire_format, "body": encoded.body,
            "observation_count": encoded.observations,
        })
    return row_id


def enqueue_score(
    session: Session,
    feedback: FeedbackInfo,
    *,
    routed: bool = True,
    now: datetime | None = None,
) -> int:
    """Insert the outbox row of a rating (create, replace or delete its score).

    A rating is always sent complete, so an older rating of the same message that is still
    waiting is cancelled: only the newest one reaches Langfuse, in the right order.
    """
    payload = codec.encode(feedback)
    moment = now or utcnow()
    sid = make_score_id(feedback.message_id)
    session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.score_id == sid,
            OutboxRow.state.in_((*DUE_STATES, OutboxState.UNROUTED.value)),
            OutboxRow.lease_owner.is_(None),
        )
        .values(
            state=OutboxState.CANCELLED.value,
            updated_at=moment,
            last_error_code="superseded",
            last_error_message="a newer rating of the same message replaced this one",
        )
        .execution_options(synchronize_session=False)
    )
    return _insert(
        session,
        app_id=feedback.context.app_id,
        kind=codec.KIND_SCORE,
        trace_id=feedback_trace_id(feedback),
        score_id=sid,
        payload=payload,
        routed=routed,
        now=moment,
    )


def cancel_pending(session: Session, app_id: str, *, now: datetime | None = None) -> int:
    """Cancel every row of ``app_id`` that waits for delivery (a removed or replaced
    configuration); returns how many. Cancelled rows keep their payload for
    ``opstrail export``. Rows leased by a dispatcher right now finish their attempt."""
    moment = now or utcnow()
    result = session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.app_id == app_id,
            OutboxRow.state.in_(DUE_STATES),
            OutboxRow.lease_owner.is_(None),
        )
        .values(
            state=OutboxState.CANCELLED.value,
            updated_at=moment,
            last_error_code="cancelled",
            last_error_message="tracing configuration removed or replaced",
        )
        .execution_options(synchronize_session=False)
    )
    # Their stored bodies go too: a later export builds from the trace info and the policy
    # of that time (the configuration change may have come with a stricter policy).
    repo.prune_wire(session, app_id=app_id)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

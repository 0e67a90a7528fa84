"""Trace info lives in ``outbox_payloads``: the migration moves it there and back without loss,
and the dispatcher's updates of an outbox row leave it untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker

from opstrail.delivery import codec
from opstrail.delivery.outbox import enqueue_trace
from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.repos import outbox as repo
from opstrail.storage.schema import alembic_config, ensure_schema
from opstrail.storage.tables.outbox import OutboxPayload, OutboxRow
from opstrail.tracing import samples
from opstrail.tracing.info import WorkflowTraceInfo

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD_ROW = (
    "INSERT INTO outbox (app_id, kind, trace_id, payload, payload_bytes, state, attempts, "
    "next_attempt_at, created_at, queued_at, updated_at) VALUES (:app, :kind, :trace, "
    ":payload, :size, :state, 0, :now, :now, :now, :now)"
)


def _recorded(session_factory: sessionmaker[Session], info: WorkflowTraceInfo) -> int:
    with session_factory() as session:
        row_id = enqueue_trace(session, info, now=NOW)
        session.commit()
    return row_id


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_migration_moves_payloads_to_their_table_and_back_without_loss(backend: Settings) -> None:
    """Rows written before the change keep their trace info, byte for byte, after upgrade and
    after downgrade; a pruned row (no payload) stays without one."""
    engine = make_engine(backend)
    config = alembic_config(engine)
    command.upgrade(config, "0002_outbox")
    info = samples.workflow_run(3)
    stored = codec.encode(info)
    with engine.begin() as connection:
        for trace, payload in (("a" * 32, stored), ("b" * 32, "é" + stored[1:]), ("c" * 32, None)):
            connection.execute(
                text(OLD_ROW),
                {"app": "app", "kind": codec.kind_of(info), "trace": trace,
                 "payload": payload, "size": len(payload or ""), "state": "pending",
                 "now": NOW},
            )
    ensure_schema(engine)
    assert "payload" not in _columns(engine, "outbox")
    sessions = make_session_factory(engine)
    with sessions() as session:
        rows = session.scalars(
            select(OutboxRow).order_by(OutboxRow.id).options(selectinload(OutboxRow.payload_row))
        ).all()
        assert [r.payload for r in rows] == [stored, "é" + stored[1:], None]
        assert codec.decode(rows[0].kind, rows[0].payload or "") == info
        claimed = repo.claim_due(
            session, owner="w", now=NOW, lease_until=NOW + timedelta(minutes=1), limit=10
        )
        assert [c.payload for c in claimed] == [stored, "é" + stored[1:], None]
        session.commit()
    command.downgrade(config, "0002_outbox")
    with engine.connect() as connection:
        back = connection.execute(text("SELECT payload FROM outbox ORDER BY id")).scalars().all()
    assert back == [stored, "é" + stored[1:], None]
    engine.dispose()


def test_dispatcher_updates_never_rewrite_stored_trace_info(
    session_factory: sessionmaker[Session],
) -> None:
    """Claiming a row and recording its outcome change ``outbox`` only; ``outbox_payloads``
    keeps the row written at recording time."""
    row_id = _recorded(session_factory, samples.workflow_run(2))
    with session_factory() as session:
        before = session.execute(
            text("SELECT rowid, payload FROM outbox_payloads WHERE outbox_id = :id"),
            {"id": row_id},
        ).one()
        claimed = repo.claim_due(
            session, owner="w", now=NOW, lease_until=NOW + timedelta(minutes=1), limit=1
        )
        assert [c.id for c in claimed] == [row_id]
        repo.apply_updates(
            session,
            owner="w",
            updates=[repo.RowUpdate(id=row_id, state="delivered", next_attempt_at=NOW,
                                    attempts=1, delivered_at=NOW)],
            now=NOW,
        )
        session.commit()
    with session_factory() as session:
        after = session.execute(
            text("SELECT rowid, payload FROM outbox_payloads WHERE outbox_id = :id"),
            {"id": row_id},
        ).one()
        assert session.get(OutboxRow, row_id).state == "delivered"  # type: ignore[union-attr]
    assert after == before


def test_prune_deletes_payload_rows_and_keeps_outbox_rows(
    session_factory: sessionmaker[Session],
) -> None:
    """After the retention period the payload row goes; the outbox row stays and reads
    ``payload`` as ``None``; newer rows keep theirs."""
    with session_factory() as session:
        old = enqueue_trace(session, samples.workflow_run(2), now=NOW - timedelta(days=40))
        new = enqueue_trace(session, samples.workflow_run(2), now=NOW)
        session.execute(
            text("UPDATE outbox SET state = 'delivered', delivered_at = created_at")
        )
        session.commit()
    with session_factory() as session:
        assert repo.prune_payloads(session, now=NOW, retention=timedelta(days=30)) == 1
        session.commit()
    with session_factory() as session:
        kept = set(session.scalars(select(OutboxPayload.outbox_id)))
        rows = {r.id: r.payload for r in session.scalars(select(OutboxRow))}
    assert kept == {new}
    assert rows[old] is None and rows[new] is not None


def test_enqueue_stores_payload_with_a_named_placeholder_driver(
    session_factory: sessionmaker[Session],
) -> None:
    """The request path's driver statements are compiled per dialect, so a driver with
    another placeholder style (named, here) stores the same row and payload."""
    from sqlalchemy import create_engine

    bound = session_factory.kw["bind"]
    named = create_engine(bound.url, paramstyle="named")
    try:
        assert named.dialect.paramstyle == "named" and not named.dialect.positional
        info = samples.workflow_run(2)
        row_id = _recorded(sessionmaker(named), info)
    finally:
        named.dispose()
    with session_factory() as session:
        stored = session.scalar(
            select(OutboxPayload.payload).where(OutboxPayload.outbox_id == row_id)
        )
    assert stored == codec.encode(info)

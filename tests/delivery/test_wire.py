"""Traces encoded as they are recorded (``outbox_wire``): what record_trace stores, and how
the dispatcher sends stored spans, falls back to the trace info, and drops them when done.

Everything runs against a real collector over loopback HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.delivery import codec
from opstrail.delivery.outbox import cancel_pending, enqueue_trace
from opstrail.exporters.otlp.exporter import WIRE_FORMAT, encode_trace
from opstrail.services import trace_recording, wire_encoding
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.repos import outbox as repo
from opstrail.storage.schema import alembic_config, ensure_schema
from opstrail.storage.tables.outbox import OutboxAck, OutboxRow, OutboxWire
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace

from . import helpers


def _comparable(trace: dict[str, Any] | None) -> dict[str, Any]:
    """A received trace without what differs between two deliveries (receipt times)."""
    assert trace is not None

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in {"receivedAt", "received_at"}}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(trace))


def test_record_trace_stores_otlp_spans_of_a_routed_trace(
    settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """A routed run stores its trace's spans, exactly as the OTLP exporter encodes them."""
    info = helpers.workflow_for(app_id, n_nodes=3)
    helpers.record(session_factory, settings, [info])
    trace = build_trace(info, trace_recording.build_options(settings))
    stored = helpers.wire_bodies(session_factory)[trace.id]
    assert stored.wire_format == WIRE_FORMAT
    assert stored.body == encode_trace(trace).body
    assert stored.observation_count == len(trace.observations) == 4


@pytest.mark.parametrize("case", ["unrouted", "turned off", "legacy path"])
def test_record_trace_stores_no_wire_when_nothing_would_send_it(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    case: str,
) -> None:
    """No body for an unrouted row, with ``encode_at_record`` off, or for a legacy-path app
    (its batches are built at send time); the trace info is stored in every case."""
    app_id = helpers.create_app(session_factory)
    if case == "turned off":
        settings = settings.model_copy(update={"encode_at_record": False})
    if case != "unrouted":
        path = "legacy" if case == "legacy path" else None
        helpers.configure_tracing(
            session_factory, settings, app_id, collector.url, ingestion_path=path
        )
    helpers.record(session_factory, settings, [helpers.message_for(app_id)])
    assert helpers.wire_bodies(session_factory) == {}
    [row] = helpers.rows(session_factory)
    assert row.payload is not None
    assert row.state == ("unrouted" if case == "unrouted" else "pending")


def test_record_trace_keeps_the_run_when_building_fails_at_record_time(
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    collector: CollectorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A builder error while recording stores the row without a body (the run goes on); the
    dispatcher builds the trace from its info and delivers it."""

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("builder bug")

    monkeypatch.setattr(wire_encoding, "build_trace", broken)
    info = helpers.message_for(app_id)
    helpers.record(session_factory, settings, [info])
    assert helpers.wire_bodies(session_factory) == {}
    monkeypatch.undo()
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 1}
    assert collector.trace(build_trace(info).id) is not None


def test_dispatcher_sends_stored_spans_without_decoding_and_as_built_at_send(
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    collector: CollectorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stored spans reach Langfuse as they are (the trace info is not even decoded), and
    what arrives is what the build-at-send path delivers for the same rows."""
    infos = [helpers.workflow_for(app_id, n_nodes=4) for _ in range(3)]
    trace_ids = [build_trace(i).id for i in infos]
    helpers.record(session_factory, settings, infos)
    assert len(helpers.wire_bodies(session_factory)) == 3
    with monkeypatch.context() as patch:
        patch.setattr(codec, "decode", _must_not_decode)
        dispatcher = helpers.dispatcher(settings, session_factory)
        helpers.drain(dispatcher)
        dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 3}
    stored = [_comparable(collector.trace(t)) for t in trace_ids]

    # The same rows again, now without bodies (dropped on delivery): built at send time.
    collector.clear()
    with session_factory() as session:
        session.execute(delete(OutboxAck))
        session.execute(update(OutboxRow).values(state="pending", next_attempt_at=utcnow()))
        session.commit()
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 3}
    built = [_comparable(collector.trace(t)) for t in trace_ids]
    assert stored == built
    assert [len(t["observations"]) for t in stored] == [5, 5, 5]


def _must_not_decode(*_: object) -> None:
    raise AssertionError("a stored trace was decoded")


def test_stored_bodies_are_dropped_when_rows_settle_by_delivery_cancel_or_age(
    settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """Bodies live only while a row waits: delivery drops them in the outcome's transaction,
    a configuration change with the cancel, and the maintenance pass those of rows
    dead-lettered by age; the trace info of every row stays."""
    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(3)])
    assert len(helpers.wire_bodies(session_factory)) == 3
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    assert helpers.states(session_factory) == {"delivered": 3}
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxWire)) == 0

    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(2)])
    assert len(helpers.wire_bodies(session_factory)) == 2
    with session_factory() as session:
        assert cancel_pending(session, app_id) == 2
        session.commit()
    assert helpers.wire_bodies(session_factory) == {}

    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(2)])
    with session_factory() as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.state == "pending")
            .values(queued_at=utcnow() - timedelta(days=30))
        )
        session.commit()
    assert len(helpers.wire_bodies(session_factory)) == 2
    dispatcher.maintain()
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 3, "cancelled": 2, "dead": 2}
    assert helpers.wire_bodies(session_factory) == {}
    assert all(row.payload is not None for row in helpers.rows(session_factory))


def test_dispatcher_builds_from_trace_info_when_stored_format_is_unknown(
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    collector: CollectorHandle,
) -> None:
    """A body of another format (stored by another release) is ignored, not sent: the
    trace is built from its info, and the body is dropped with the outcome."""
    info = helpers.message_for(app_id)
    helpers.record(session_factory, settings, [info])
    trace_id = build_trace(info).id
    with session_factory() as session:
        wire = session.scalars(select(OutboxWire)).one()
        wire.wire_format = "otlp-spans/0"
        wire.body = b"not protobuf"
        session.commit()
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 1}
    assert len(collector.trace(trace_id)["observations"]) == 5  # type: ignore[index]
    assert helpers.wire_bodies(session_factory) == {}


def test_dispatcher_builds_stored_trace_for_a_legacy_destination(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A row stored for OTLP whose destination now takes the legacy path (an older server)
    is built from its trace info and sent as legacy events."""
    with running_collector(langfuse_version="3.10.0") as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        info = helpers.message_for(app_id)
        trace = build_trace(info)
        with session_factory() as session:
            enqueue_trace(session, info, encoded=encode_trace(trace))
            session.commit()
        assert len(helpers.wire_bodies(session_factory)) == 1
        dispatcher = helpers.dispatcher(settings, session_factory)
        helpers.drain(dispatcher)
        dispatcher.close()
        assert helpers.states(session_factory) == {"delivered": 1}
        sent = {r.endpoint for r in collector.request_log()} - {"health", "projects"}
        assert sent == {"ingestion"}
        assert collector.trace(trace.id) is not None
        assert helpers.wire_bodies(session_factory) == {}


def test_enqueue_refuses_a_body_of_another_trace(
    session_factory: sessionmaker[Session], app_id: str
) -> None:
    """A body is stored only beside the trace info it was built from."""
    info = helpers.message_for(app_id)
    other = build_trace(helpers.message_for(app_id))
    with session_factory() as session, pytest.raises(ValueError, match="is not trace"):
        enqueue_trace(session, info, encoded=encode_trace(other))


def test_claim_returns_stored_body_and_leaves_trace_info_unread(
    settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """A claimed row carries its stored body, format and observation count; its trace info is
    not read by the claim, and ``payload_of`` reads it when the dispatcher needs it."""
    info = helpers.message_for(app_id)
    helpers.record(session_factory, settings, [info])
    now = utcnow()
    with session_factory() as session:
        [row] = repo.claim_due(
            session, owner="me", now=now, lease_until=now + timedelta(seconds=30), limit=10
        )
        assert row.wire_format == WIRE_FORMAT
        assert row.wire and row.wire_observations == 5
        assert row.payload is None
        assert repo.payload_of(session, row.id) == codec.encode(info)
        session.rollback()


def test_wire_bodies_store_and_claim_byte_for_byte_and_migrate_down_without_loss(
    backend: Settings,
) -> None:
    """On SQLite and PostgreSQL (each driver's own INSERT) a body comes back from the claim
    byte for byte; downgrading below 0007 drops only bodies, the trace info stays, and after
    the upgrade the row is claimed without one (built from its info)."""
    engine = make_engine(backend)
    ensure_schema(engine)
    sessions = make_session_factory(engine)
    info = samples.workflow_run(3)
    encoded = encode_trace(build_trace(info))
    assert b"\x00" in encoded.body  # binary, not text
    with sessions() as session:
        row_id = enqueue_trace(session, info, encoded=encoded)
        session.commit()
    now = utcnow()
    with sessions() as session:
        [claimed] = repo.claim_due(
            session, owner="w", now=now, lease_until=now + timedelta(minutes=1), limit=5
        )
        session.rollback()
    assert (claimed.id, claimed.wire, claimed.wire_format) == (row_id, encoded.body, WIRE_FORMAT)
    config = alembic_config(engine)
    command.downgrade(config, "0006_outbox_payloads")
    assert "outbox_wire" not in inspect(engine).get_table_names()
    ensure_schema(engine)
    with sessions() as session:
        [claimed] = repo.claim_due(
            session, owner="w", now=now, lease_until=now + timedelta(minutes=1), limit=5
        )
        session.rollback()
    assert claimed.wire is None and claimed.payload == codec.encode(info)
    engine.dispose()


def test_sqlite_connections_clear_deleted_content_without_zeroing_freed_pages(
    settings: Settings,
) -> None:
    """Every SQLite connection uses ``secure_delete=FAST`` whatever the build's default
    (Debian's zeroes every freed page, which made dropping wire bodies the worker's main
    cost), and WAL."""
    engine = make_engine(settings)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 2  # FAST
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_claim_sorts_ids_alone_and_reads_bodies_of_claimed_rows_only(
    settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """The due rows are sorted without their data; bodies and trace info are read by id for
    the rows taken (a sort with the data selected read every due row's body), oldest first."""
    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(5)])
    statements: list[str] = []
    now = utcnow()
    with session_factory() as session:
        raw = session.connection().connection.driver_connection
        raw.set_trace_callback(statements.append)  # type: ignore[union-attr]
        claimed = repo.claim_due(
            session, owner="w", now=now, lease_until=now + timedelta(seconds=30), limit=2
        )
        raw.set_trace_callback(None)  # type: ignore[union-attr]
        session.rollback()
    ids = [r.id for r in helpers.rows(session_factory)]
    assert [c.id for c in claimed] == ids[:2]
    reads = [s for s in statements if "outbox_wire.body" in s]
    assert len(reads) == 1
    assert "ORDER BY" not in reads[0] and "LIMIT" not in reads[0]


def test_export_of_a_cancelled_row_never_sends_its_stored_body(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A run recorded under the full policy, cancelled by a configuration change, then
    exported under metadata-only: what arrives follows the new policy (the stored body, built
    under the old one, is dropped with the cancel and never sent)."""
    from opstrail.services.export import start_export
    from opstrail.services.tracing_settings import PolicyInput, delete_config, set_policy

    app_id = helpers.create_app(session_factory)
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    secret = "alice@example.com wants her invoice"
    info = helpers.message_for(app_id, query=secret)
    helpers.record(session_factory, settings, [info])
    assert len(helpers.wire_bodies(session_factory)) == 1
    with session_factory() as session:
        delete_config(session, tenant_id=None, app_id=app_id, provider="langfuse")
        session.commit()
    assert helpers.wire_bodies(session_factory) == {}  # dropped with the cancel
    with session_factory() as session:
        set_policy(session, tenant_id=None, app_id=app_id,
                   change=PolicyInput(content_mode="metadata-only"))
        session.commit()
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    with session_factory() as session:
        plan = start_export(session, settings, app_id=app_id)
    assert len(plan.row_ids) == 1
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 1}
    received = collector.trace(build_trace(info).id)
    assert received is not None and "alice@example.com" not in str(received)


def test_export_drops_a_body_still_stored_for_a_requeued_row(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """Export re-queues rows through their trace info only: a body left on a row (here: a
    dead row whose body a crash kept) is deleted when the row is queued again."""
    from opstrail.services.export import start_export

    helpers.record(session_factory, settings, [helpers.message_for(app_id)])
    with session_factory() as session:
        session.execute(update(OutboxRow).values(state="dead"))
        session.commit()
    assert len(helpers.wire_bodies(session_factory)) == 1
    with session_factory() as session:
        start_export(session, settings, app_id=app_id)
    assert helpers.wire_bodies(session_factory) == {}


def test_dispatcher_dead_letters_only_the_trace_that_fails_to_encode(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trace built at send time whose encoding raises is dead-lettered with the reason;
    the other traces of its request are delivered."""
    from opstrail.exporters.otlp.exporter import OtlpExporter

    built = settings.model_copy(update={"encode_at_record": False})
    infos = [helpers.message_for(app_id) for _ in range(4)]
    victim = build_trace(infos[2]).id
    helpers.record(session_factory, built, infos)
    original = OtlpExporter.encode

    def encode(self: OtlpExporter, trace: Any) -> Any:
        if trace.id == victim:
            raise RuntimeError("encoder bug")
        return original(self, trace)

    monkeypatch.setattr(OtlpExporter, "encode", encode)
    dispatcher = helpers.dispatcher(built, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    by_trace = {r.trace_id: r for r in helpers.rows(session_factory)}
    assert (by_trace[victim].state, by_trace[victim].last_error_code) == ("dead", "encode_failed")
    assert {t for t, r in by_trace.items() if r.state == "delivered"} == set(by_trace) - {victim}


def test_dispatcher_retries_a_row_whose_trace_info_cannot_be_read(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database error while reading a stored row's trace info (needed here for a body of
    another format) retries that row later; the cycle and the other rows go on."""
    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(3)])
    with session_factory() as session:
        first = session.scalars(select(OutboxWire).order_by(OutboxWire.outbox_id)).first()
        assert first is not None
        first.wire_format = "otlp-spans/0"
        stale = first.outbox_id
        session.commit()

    def broken(*_: object, **__: object) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(repo, "payload_of", broken)
    dispatcher = helpers.dispatcher(settings, session_factory)
    dispatcher.run_once()
    dispatcher.close()
    states = {r.id: (r.state, r.last_error_code) for r in helpers.rows(session_factory)}
    assert states.pop(stale) == ("retrying", "database_error")
    assert set(states.values()) == {("delivered", None)}


def test_dispatcher_keeps_the_body_of_a_row_whose_lease_it_lost(
    settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """Bodies are dropped only for rows now in a final state: a row another dispatcher took
    over (still due) keeps its body."""
    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(2)])
    ids = [r.id for r in helpers.rows(session_factory)]
    with session_factory() as session:
        session.execute(update(OutboxRow).where(OutboxRow.id == ids[0]).values(state="delivered"))
        repo.drop_wire(session, ids=ids, settled_only=True)
        session.commit()
    assert len(helpers.wire_bodies(session_factory)) == 1


def test_stored_body_over_the_request_cap_is_built_fitted_and_delivered(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """A recorded trace larger than the exporter's 4 MB request cap is not sent as stored:
    it is built from its info, its largest fields cut to fit the cap (the exporter's fit,
    see test_otlp_encode_fits_a_trace_over_the_cap_with_truncation_markers), and delivered
    with a visible truncation marker."""
    text = " ".join(uuid.uuid4().hex for _ in range(150_000))  # about 4.95 MB
    info = helpers.message_for(app_id, query=text)
    helpers.record(session_factory, settings, [info])
    [stored] = helpers.wire_bodies(session_factory).values()
    assert len(stored.body) > 4 * 1024 * 1024
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 1}
    received = collector.trace(build_trace(info).id)
    assert received is not None and "truncated" in str(received)
    assert len(received["observations"]) == 5

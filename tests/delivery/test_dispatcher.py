"""The dispatcher against a real collector over loopback HTTP: delivery, pause on 401 and
resume after a key fix, 207 partial answers, 429 Retry-After, bisecting a 400, age limit."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.delivery.outbox import enqueue_trace
from opstrail.errors import DeliveryError
from opstrail.services.delivery_status import delivery_status, trace_delivery
from opstrail.services.trace_recording import record_feedback
from opstrail.settings import Settings
from opstrail.storage.tables.outbox import OutboxAck, OutboxWire
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace
from opstrail.tracing.info import RootTraceInfo
from opstrail.tracing.tree import Trace

from . import helpers


def test_dispatcher_delivers_every_observation_when_destination_accepts(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """Every recorded trace arrives with exactly the built observations and is acknowledged."""
    infos = [helpers.message_for(app_id) for _ in range(4)] + [helpers.workflow_for(app_id)]
    helpers.record(session_factory, settings, infos)
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    expected = {o.id for info in infos for o in build_trace(info).observations}
    assert {o["id"] for o in collector.observations()} == expected
    assert helpers.states(session_factory) == {"delivered": 5}
    with session_factory() as session:
        acks = session.scalars(select(OutboxAck)).all()
        status = delivery_status(session, app_id)
        one = trace_delivery(session, build_trace(infos[0]).id)
    assert len(acks) == 5
    assert {a.destination_key for a in acks} == {f"{collector.url}#proj-test"}
    assert (status.delivered, status.pending, status.state) == (5, 0, "ok")
    assert one is not None and one.state == "delivered"


def test_dispatcher_keeps_rows_on_401_then_delivers_after_key_fix(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """A revoked key pauses the app with its rows kept; fixing the key delivers them all."""
    helpers.revoke_keys(session_factory, settings, app_id)
    infos = [helpers.message_for(app_id) for _ in range(3)]
    helpers.record(session_factory, settings, infos)
    dispatcher = helpers.dispatcher(settings, session_factory)
    dispatcher.run_once()
    assert collector.observations() == []
    with session_factory() as session:
        status = delivery_status(session, app_id)
    assert (status.state, status.paused, status.retrying) == ("unauthorized", True, 3)
    assert dispatcher.run_once() == 0  # paused: nothing is sent again before a change
    helpers.fix_keys(session_factory, settings, app_id, helpers.SECRET_KEY)
    helpers.drain(dispatcher, until=lambda: helpers.states(session_factory) == {"delivered": 3})
    dispatcher.close()
    assert {o["traceId"] for o in collector.observations()} == {
        build_trace(i).id for i in infos
    }
    with session_factory() as session:
        assert delivery_status(session, app_id).state == "ok"


def test_dispatcher_honours_retry_after_when_rate_limited(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """After a 429 with Retry-After: 2 the trace is not sent again before two seconds."""
    collector.set_faults(fail_next=1, fail_status=429, retry_after_seconds=2)
    helpers.record(session_factory, settings, [helpers.message_for(app_id)])
    dispatcher = helpers.dispatcher(settings, session_factory)
    started = time.monotonic()
    dispatcher.run_once()
    row = helpers.rows(session_factory)[0]
    assert (row.state, row.last_error_code) == ("retrying", "rate_limited")
    assert row.next_attempt_at - row.updated_at >= timedelta(seconds=1.9)
    helpers.drain(dispatcher, until=lambda: helpers.states(session_factory) == {"delivered": 1})
    dispatcher.close()
    assert time.monotonic() - started >= 1.9
    otel = [r for r in collector.request_log() if r.endpoint == "otel"]
    assert [r.status for r in otel] == [429, 200]


def _poison(victim: str) -> callable:  # type: ignore[valid-type]
    """A builder that breaks the root span id of one trace (all-zero: Langfuse answers 400)."""

    def build(info: RootTraceInfo) -> Trace:
        trace = build_trace(info)
        if trace.id != victim:
            return trace
        broken = list(trace.observations)
        object.__setattr__(broken[0], "id", "0" * 16)
        return replace(trace, observations=tuple(broken))

    return build


@pytest.mark.parametrize("encode_at_record", [False, True], ids=["built-at-send", "stored"])
def test_dispatcher_dead_letters_only_poison_trace_when_batch_rejected(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    encode_at_record: bool,
) -> None:
    """A whole-request 400 is bisected: only the poison trace is dead, the others arrive,
    whether the traces are built at send time or sent as stored when recorded."""
    settings = settings.model_copy(update={"encode_at_record": encode_at_record})
    infos = [helpers.message_for(app_id) for _ in range(8)]
    victim_trace = build_trace(infos[5])
    victim = victim_trace.id
    helpers.record(session_factory, settings, infos)
    if encode_at_record:  # break the stored spans: root span id all zero
        root_id = bytes.fromhex(victim_trace.observations[0].id)
        helpers.rewrite_wire(
            session_factory, victim, lambda body: body.replace(root_id, bytes(8))
        )
        dispatcher = helpers.dispatcher(settings, session_factory)
    else:
        dispatcher = helpers.dispatcher(settings, session_factory, build_trace=_poison(victim))
    helpers.drain(dispatcher)
    dispatcher.close()
    by_trace = {r.trace_id: r for r in helpers.rows(session_factory)}
    assert by_trace[victim].state == "dead"
    assert by_trace[victim].last_error_code == "rejected"
    assert by_trace[victim].payload is not None  # kept for a fixed re-send
    assert {t for t, r in by_trace.items() if r.state == "delivered"} == set(by_trace) - {victim}
    assert {o["traceId"] for o in collector.observations()} == set(by_trace) - {victim}
    with session_factory() as session:
        failed = trace_delivery(session, victim)
    assert failed is not None and failed.state == "failed" and "dead" in (failed.reason or "")


def test_dispatcher_retries_only_failed_events_when_legacy_answers_207(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Per-event 500s in a 207 retry only those traces; in the end every observation
    arrived and any re-sent copy is identical."""
    with running_collector(langfuse_version="3.20.0") as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        collector.set_faults(partial_error_rate=0.1, seed=7)
        infos = [helpers.message_for(app_id) for _ in range(20)]
        helpers.record(session_factory, settings, infos)
        dispatcher = helpers.dispatcher(settings, session_factory)
        dispatcher.run_once()
        first = helpers.states(session_factory)
        assert first.get("retrying", 0) > 0 and first.get("delivered", 0) > 0
        collector.clear_faults()
        helpers.drain(
            dispatcher, until=lambda: helpers.states(session_factory) == {"delivered": 20}
        )
        dispatcher.close()
        expected = {o.id for info in infos for o in build_trace(info).observations}
        assert {o["id"] for o in collector.observations()} == expected
        assert all(d.identical for d in collector.duplicates())


def test_dispatcher_switches_to_otlp_when_server_refuses_legacy_events(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A v4 server refusing legacy trace events makes the dispatcher switch to OTLP."""
    app_id = helpers.create_app(session_factory)
    helpers.configure_tracing(
        session_factory, settings, app_id, collector.url, ingestion_path="legacy"
    )
    info = helpers.message_for(app_id)
    helpers.record(session_factory, settings, [info])
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert helpers.states(session_factory) == {"delivered": 1}
    assert {o["id"] for o in collector.observations()} == {
        o.id for o in build_trace(info).observations
    }
    assert collector.requests().get("otel", 0) == 1


def test_dispatcher_sends_and_deletes_scores_when_rated_and_revoked(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """A rating becomes a score on the message's trace; revoking it deletes the score."""
    info = helpers.message_for(app_id)
    helpers.record(session_factory, settings, [info])
    rating = replace(
        samples.feedback("like", message_id=info.message_id), context=info.context
    )
    with session_factory() as session:
        record_feedback(session, settings, rating)
        session.commit()
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    scores = collector.scores()
    assert len(scores) == 1 and scores[0]["traceId"] == build_trace(info).id
    with session_factory() as session:
        record_feedback(session, settings, replace(rating, rating=None))
        session.commit()
    helpers.drain(dispatcher)
    dispatcher.close()
    assert collector.scores() == []
    assert helpers.states(session_factory) == {"delivered": 3}


def test_dispatcher_dead_letters_rows_when_older_than_age_limit(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """Rows waiting longer than the age limit (paused ones too) are dead, never deleted."""
    old = datetime.now(UTC) - timedelta(days=8)
    with session_factory() as session:
        enqueue_trace(session, helpers.message_for(app_id), now=old)
        enqueue_trace(session, helpers.message_for(app_id))
        session.commit()
    dispatcher = helpers.dispatcher(settings, session_factory)
    expired, _pruned = dispatcher.maintain()
    dispatcher.close()
    assert expired == 1
    first, second = helpers.rows(session_factory)
    assert (first.state, first.last_error_code) == ("dead", "expired")
    assert first.payload is not None
    assert second.state == "pending"


def test_sqlite_dispatcher_refuses_when_another_holds_the_lease(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """On SQLite a second dispatcher refuses to start while the first holds the lease."""
    first = helpers.dispatcher(settings, session_factory)
    second = helpers.dispatcher(settings, session_factory)
    first.acquire_single_lease()
    with pytest.raises(DeliveryError) as refused:
        second.acquire_single_lease()
    assert refused.value.code == "dispatcher_lease_held"
    first.close()
    second.acquire_single_lease()  # released at close: the next one may start
    second.close()


def test_dispatcher_pauses_on_403_then_probes_again_after_interval(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """403 (usage suspended) pauses the app as "error" with rows kept; once the probe
    interval passes, the rows are tried again and delivered."""
    collector.set_faults(fail_next=1, fail_status=403)
    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(2)])
    dispatcher = helpers.dispatcher(settings, session_factory, pause_probe_seconds=0.5)
    dispatcher.run_once()
    with session_factory() as session:
        status = delivery_status(session, app_id)
    assert (status.state, status.paused, status.retrying) == ("error", True, 2)
    assert status.last_error_code == "ingestion_suspended"
    helpers.drain(dispatcher, until=lambda: helpers.states(session_factory) == {"delivered": 2})
    dispatcher.close()
    with session_factory() as session:
        assert delivery_status(session, app_id).state == "ok"


@pytest.mark.parametrize("encode_at_record", [False, True], ids=["built-at-send", "stored"])
def test_dispatcher_splits_and_shrinks_when_destination_answers_413(
    settings: Settings, session_factory: sessionmaker[Session], encode_at_record: bool
) -> None:
    """A 413 splits the batch; a lone trace still too large is shrunk (with truncation
    markers) and delivered; a stored trace is built from its trace info to be shrunk."""
    settings = settings.model_copy(update={"encode_at_record": encode_at_record})
    with running_collector(otlp_max_bytes=60_000) as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        small = [helpers.message_for(app_id) for _ in range(6)]
        # Hex text compresses only about 2x, so the gzip body stays a plausible upload.
        noise = " ".join(uuid.uuid4().hex for _ in range(4000))
        huge = helpers.message_for(app_id, query=noise)
        helpers.record(session_factory, settings, [*small, huge])
        with session_factory() as session:
            stored = session.scalar(select(func.count()).select_from(OutboxWire))
        assert stored == (7 if encode_at_record else 0)
        dispatcher = helpers.dispatcher(settings, session_factory)
        helpers.drain(dispatcher)
        dispatcher.close()
        assert helpers.states(session_factory) == {"delivered": 7}
        assert 413 in [r.status for r in collector.request_log()]
        big = collector.trace(build_trace(huge).id)
        assert big is not None
        assert "truncated" in str(big)


def test_dispatcher_prunes_payload_of_delivered_rows_after_retention(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """Delivered rows keep their trace info for the retention period, then lose only the
    payload (the row and its acknowledgement stay); dead rows keep theirs."""
    from sqlalchemy import update

    from opstrail.storage.tables.outbox import OutboxRow

    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(2)])
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    first, second = helpers.rows(session_factory)
    with session_factory() as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == first.id)
            .values(delivered_at=datetime.now(UTC) - timedelta(days=31))
        )
        session.commit()
    _expired, pruned = dispatcher.maintain()
    dispatcher.close()
    first, second = helpers.rows(session_factory)
    assert pruned == 1
    assert (first.state, first.payload) == ("delivered", None)
    assert second.payload is not None
    with session_factory() as session:
        assert len(session.scalars(select(OutboxAck)).all()) == 2


def test_dispatcher_opens_breaker_for_broken_destination_without_slowing_others(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """A destination that keeps failing gets its circuit opened (its rows wait without a
    request), while another app's destination keeps receiving."""
    with running_collector() as doomed:
        broken_app = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, broken_app, doomed.url)
        doomed.set_faults(error_rate=1.0, error_status=503)
        dispatcher = helpers.dispatcher(settings, session_factory)
        for _ in range(6):
            helpers.record(
                session_factory,
                settings,
                [helpers.message_for(broken_app), helpers.message_for(app_id)],
            )
            dispatcher.run_once()
        failed_requests = doomed.requests().get("otel", 0)
        dispatcher.close()
    rows = helpers.rows(session_factory)
    healthy = [r for r in rows if r.app_id == app_id]
    broken = [r for r in rows if r.app_id == broken_app]
    assert all(r.state == "delivered" for r in healthy)
    # Six cycles had rows for it, but the breaker opened after the third failure.
    assert 3 <= failed_requests < 6
    assert "circuit_open" in {r.last_error_code for r in broken}
    assert all(r.state in ("pending", "retrying") for r in broken)

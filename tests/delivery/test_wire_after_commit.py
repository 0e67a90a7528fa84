"""Encoding after commit (``services.wire_encoding``): in a server, a run's trace is built and
encoded by a background thread once the run's transaction commits, never inside it; a body
lands only on its own row while that row is untouched, and whatever the encoder misses is
built by the dispatcher, so delivery is the same either way. Real collector, real databases."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle
from opstrail.exporters.otlp.exporter import WIRE_FORMAT, encode_trace
from opstrail.services import wire_encoding
from opstrail.services.trace_recording import build_options, record_trace
from opstrail.services.wire_encoding import WireEncoder, attach
from opstrail.settings import Settings
from opstrail.storage.engine import make_session_factory
from opstrail.storage.tables.outbox import OutboxRow, OutboxWire
from opstrail.tracing.build import build_trace
from opstrail.tracing.info import RootTraceInfo

from . import helpers

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(name="encoder")
def _encoder(engine: Engine, settings: Settings) -> Iterator[WireEncoder]:
    """An encoder attached to a session factory of its own, not started yet."""
    factory = make_session_factory(engine)
    encoder = WireEncoder(factory, build_options(settings), max_queued=100)
    attach(factory, encoder)
    yield encoder
    encoder.stop(grace=5.0)


def _record(encoder: WireEncoder, settings: Settings, infos: list[RootTraceInfo]) -> None:
    with encoder._sessions() as session:
        for info in infos:
            record_trace(session, settings, info)
        session.commit()


def _never_build(info: RootTraceInfo) -> Any:
    raise AssertionError("the dispatcher built a trace that had a stored body")


def test_the_trace_is_encoded_after_the_commit_and_not_inside_the_transaction(
    backend_database: tuple[Settings, sessionmaker[Session], Engine], collector: CollectorHandle
) -> None:
    """Inside the run's transaction only the trace info is written; after the commit the
    encoder stores exactly the spans the exporter would have encoded (SQLite, PostgreSQL)."""
    settings, sessions, engine = backend_database
    app_id = helpers.create_app(sessions)
    helpers.configure_tracing(sessions, settings, app_id, collector.url)
    factory = make_session_factory(engine)
    encoder = WireEncoder(factory, build_options(settings))
    attach(factory, encoder)
    encoder.start()
    try:
        info = helpers.message_for(app_id)
        with factory() as session:
            record_trace(session, settings, info)
            session.flush()
            assert session.scalars(select(OutboxWire)).all() == []
            session.commit()
        assert encoder.flush()
        expected = encode_trace(build_trace(info, build_options(settings)))
        stored = helpers.wire_bodies(sessions)[expected.trace_id]
        assert (stored.wire_format, stored.body, stored.observation_count) == (
            WIRE_FORMAT, expected.body, expected.observations
        )
        assert (encoder.stats.encoded, encoder.stats.stored) == (1, 1)
    finally:
        encoder.stop()


def test_a_rolled_back_run_hands_nothing_over_even_when_its_row_id_is_reused(
    encoder: WireEncoder, settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """SQLite gives a rolled-back row's id to the next row: the rolled-back trace must not be
    encoded onto it. Only the committed trace gets a body, and it is its own."""
    lost, kept = helpers.message_for(app_id), helpers.message_for(app_id)
    with encoder._sessions() as session:
        record_trace(session, settings, lost)
        session.rollback()
        record_trace(session, settings, kept)
        session.commit()
    encoder.start()
    assert encoder.flush()
    bodies = helpers.wire_bodies(session_factory)
    assert set(bodies) == {build_trace(kept).id}
    assert encoder.stats.encoded == 1


def test_a_run_that_closes_without_commit_hands_nothing_over(
    encoder: WireEncoder, settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """A session closed with its transaction open (an exception in the run) is a rollback,
    also when the same session object goes on to record and commit another run."""
    with encoder._sessions() as session:
        record_trace(session, settings, helpers.message_for(app_id))
        session.close()
        record_trace(session, settings, helpers.message_for(app_id))
        session.commit()
    encoder.start()
    assert encoder.flush()
    assert encoder.stats.encoded == 1
    assert len(helpers.wire_bodies(session_factory)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"lease_owner": "a-dispatcher"},  # claimed: that dispatcher builds it itself
        {"last_error_code": "export"},  # re-queued by opstrail export
        {"state": "delivered", "attempts": 1},  # already sent
    ],
    ids=["claimed", "requeued-by-export", "delivered"],
)
def test_a_body_never_lands_on_a_row_touched_since_it_was_recorded(
    change: dict[str, Any],
    encoder: WireEncoder,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """A late body is dropped when its row was claimed, re-queued or settled meanwhile."""
    _record(encoder, settings, [helpers.message_for(app_id)])
    with session_factory() as session:
        session.execute(update(OutboxRow).values(**change))
        session.commit()
    encoder.start()
    assert encoder.flush()
    assert helpers.wire_bodies(session_factory) == {}
    assert (encoder.stats.encoded, encoder.stats.stored) == (1, 0)


def test_delivery_sends_the_bodies_encoded_after_commit(
    encoder: WireEncoder,
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """Every observation arrives, from stored bodies only: the dispatcher's builder is never
    called."""
    infos = [helpers.message_for(app_id) for _ in range(4)] + [helpers.workflow_for(app_id)]
    encoder.start()
    _record(encoder, settings, infos)
    assert encoder.flush()
    dispatcher = helpers.dispatcher(settings, session_factory, build_trace=_never_build)
    helpers.drain(dispatcher)
    dispatcher.close()
    expected = {o.id for info in infos for o in build_trace(info).observations}
    assert collector.observation_ids() == expected
    assert helpers.states(session_factory) == {"delivered": 5}


def test_traces_the_encoder_misses_are_built_at_send_time(
    encoder: WireEncoder,
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full queue and a failing encode lose nothing: those rows have no body, and the
    dispatcher builds them from their trace info."""
    encoder._max_queued = 2
    infos = [helpers.message_for(app_id) for _ in range(3)]
    _record(encoder, settings, infos)
    assert encoder.stats.dropped == 1
    failing = build_trace(infos[0]).id
    encode = wire_encoding.encode_record

    def flaky(info: RootTraceInfo, *args: Any) -> Any:
        if build_trace(info).id == failing:
            raise RuntimeError("encoder bug")
        return encode(info, *args)

    monkeypatch.setattr(wire_encoding, "encode_record", flaky)
    encoder.start()
    assert encoder.flush()
    assert (encoder.stats.encoded, encoder.stats.failed) == (1, 1)
    assert len(helpers.wire_bodies(session_factory)) == 1
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert collector.observation_ids() == {
        o.id for info in infos for o in build_trace(info).observations
    }


def test_without_an_attached_encoder_the_trace_is_encoded_in_the_transaction(
    settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """CLI runs and tests record without a server: the body is stored with the row."""
    info = helpers.message_for(app_id)
    with session_factory() as session:
        record_trace(session, settings, info)
        session.flush()
        assert len(session.scalars(select(OutboxWire)).all()) == 1
        session.commit()


def test_a_released_savepoint_hands_nothing_over_before_the_outer_commit(
    encoder: WireEncoder, settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """Releasing a savepoint is not a commit: if the outer transaction then rolls back, the
    trace recorded inside was never handed to the encoder."""
    with encoder._sessions() as session:
        with session.begin_nested():
            record_trace(session, settings, helpers.message_for(app_id))
        assert encoder._queue.jobs == deque()
        session.rollback()
    encoder.start()
    assert encoder.flush()
    assert encoder.stats.encoded == 0


def test_a_rolled_back_savepoint_forgets_its_traces_and_keeps_the_others(
    encoder: WireEncoder, settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """Only the traces whose rows were committed are encoded: one before the savepoint, one
    in a released savepoint; not the one in the savepoint rolled back, nor in one nested in
    it."""
    before, released, lost, nested_lost = (helpers.message_for(app_id) for _ in range(4))
    with encoder._sessions() as session:
        record_trace(session, settings, before)
        with session.begin_nested():
            record_trace(session, settings, released)
        savepoint = session.begin_nested()
        record_trace(session, settings, lost)
        with session.begin_nested():
            record_trace(session, settings, nested_lost)
        savepoint.rollback()
        session.commit()
    encoder.start()
    assert encoder.flush()
    assert set(helpers.wire_bodies(session_factory)) == {
        build_trace(before).id, build_trace(released).id
    }
    assert (encoder.stats.encoded, encoder.stats.stored) == (2, 2)


def test_commits_after_stop_are_left_to_the_dispatcher(
    encoder: WireEncoder, settings: Settings, app_id: str
) -> None:
    """A stopped encoder takes no more work (nothing would drain it)."""
    encoder.start()
    encoder.stop()
    _record(encoder, settings, [helpers.message_for(app_id)])
    assert encoder.stats.dropped == 1
    assert not encoder._queue.jobs


def test_one_body_that_cannot_be_stored_costs_only_itself(
    encoder: WireEncoder, settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """A batch whose store fails is stored again body by body: only the failing body is
    lost (here a row that already has one: its primary key refuses a second)."""
    infos = [helpers.message_for(app_id) for _ in range(3)]
    _record(encoder, settings, infos)
    with session_factory() as session:
        middle = session.scalars(select(OutboxRow.id).order_by(OutboxRow.id)).all()[1]
        session.add(OutboxWire(outbox_id=middle, wire_format="other/1", body=b"x",
                               observation_count=1))
        session.commit()
    encoder.start()
    assert encoder.flush()
    stats = encoder.stats
    assert (stats.encoded, stats.stored, stats.failed) == (3, 2, 1)
    bodies = helpers.wire_bodies(session_factory)
    assert bodies[build_trace(infos[1]).id].wire_format == "other/1"
    assert {bodies[build_trace(i).id].wire_format for i in (infos[0], infos[2])} == {WIRE_FORMAT}


def test_traces_committed_close_together_share_one_store_transaction(
    engine: Engine, settings: Settings, session_factory: sessionmaker[Session], app_id: str
) -> None:
    """The encoder lingers briefly after the first trace, so runs committing close together
    are stored in one transaction; a lone trace is still stored without a flush."""
    factory = make_session_factory(engine)
    encoder = WireEncoder(factory, build_options(settings), linger=0.3)
    attach(factory, encoder)
    encoder.start()
    try:
        for _ in range(3):
            with factory() as session:
                record_trace(session, settings, helpers.message_for(app_id))
                session.commit()
        helpers.wait_until(lambda: encoder.stats.stored == 3, timeout=5)
        assert encoder.stats.transactions == 1
        with factory() as session:
            record_trace(session, settings, helpers.message_for(app_id))
            session.commit()
        helpers.wait_until(lambda: encoder.stats.stored == 4, timeout=5)
        assert encoder.stats.transactions == 2
    finally:
        encoder.stop()

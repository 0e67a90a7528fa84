"""Cycles in flight: ``Dispatcher.run`` keeps a second cycle going while a backlog lasts, so
one cycle's request waits on Langfuse while another claims or records. Proven against a real
collector that answers slowly, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.delivery import dispatcher as dispatcher_module
from opstrail.delivery.dispatcher import Dispatcher, DispatchOptions
from opstrail.services.trace_recording import record_feedback
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.repos import outbox as repo
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace

from . import helpers

pytestmark = pytest.mark.timeout(120)


class _Overlap:
    """Counts the ``_deliver`` calls in progress at once, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def wrap(self, dispatcher: Dispatcher) -> None:
        deliver = dispatcher._deliver

        def counted(*args: Any, **kwargs: Any) -> None:
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                deliver(*args, **kwargs)
            finally:
                with self._lock:
                    self.now -= 1

        dispatcher._deliver = counted  # type: ignore[method-assign]


def _slow_backlog(
    collector: CollectorHandle,
    settings: Settings,
    sessions: sessionmaker[Session],
    app_id: str,
    *,
    traces: int,
    latency: float,
    cycles: int,
) -> tuple[Dispatcher, _Overlap]:
    """``traces`` recorded messages, a collector answering after ``latency`` seconds, and a
    dispatcher of 5-row batches whose overlapping deliveries are counted."""
    helpers.record(sessions, settings, [helpers.message_for(app_id) for _ in range(traces)])
    collector.set_faults(latency_seconds=latency, targets=("otel",))
    dispatcher = helpers.dispatcher(settings, sessions, batch_size=5, cycles_in_flight=cycles)
    overlap = _Overlap()
    overlap.wrap(dispatcher)
    return dispatcher, overlap


@contextmanager
def _running(dispatcher: Dispatcher) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=dispatcher.run, name="test-dispatcher")
    thread.start()
    try:
        yield thread
    finally:
        dispatcher.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "run() did not return after request_stop"


def test_run_keeps_two_cycles_in_flight_while_a_backlog_lasts(
    collector: CollectorHandle, backend_database: tuple[Settings, sessionmaker[Session], Engine]
) -> None:
    """With more rows due than one batch and a slow Langfuse, two cycles send at once; every
    observation still arrives exactly once and every row ends delivered."""
    settings, sessions, _ = backend_database
    app_id = helpers.create_app(sessions)
    helpers.configure_tracing(sessions, settings, app_id, collector.url)
    infos = [helpers.message_for(app_id) for _ in range(40)]
    helpers.record(sessions, settings, infos)
    collector.set_faults(latency_seconds=0.15, targets=("otel",))
    dispatcher = helpers.dispatcher(settings, sessions, batch_size=5, cycles_in_flight=2)
    overlap = _Overlap()
    overlap.wrap(dispatcher)
    expected = {o.id for info in infos for o in build_trace(info).observations}
    with _running(dispatcher):
        collector.wait_for(lambda: collector.observation_ids() >= expected, timeout=60)
        collector.wait_for(lambda: helpers.states(sessions) == {"delivered": 40}, timeout=30)
    assert overlap.most == 2
    assert collector.observation_ids() == expected
    assert collector.copy_count() == len(expected)  # none sent twice


def test_one_cycle_in_flight_never_overlaps(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """``cycles_in_flight=1`` is the strictly sequential loop."""
    dispatcher, overlap = _slow_backlog(
        collector, settings, session_factory, app_id, traces=20, latency=0.05, cycles=1
    )
    with _running(dispatcher):
        collector.wait_for(
            lambda: helpers.states(session_factory) == {"delivered": 20}, timeout=30
        )
    assert overlap.most == 1


def test_an_idle_dispatcher_polls_from_one_thread_only(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a backlog the helper cycle sleeps: an idle worker costs one poll, not two."""
    claims: dict[str, int] = {}
    claim_due = dispatcher_module.repo.claim_due

    def counted(*args: Any, **kwargs: Any) -> Any:
        name = threading.current_thread().name
        claims[name] = claims.get(name, 0) + 1
        return claim_due(*args, **kwargs)

    monkeypatch.setattr(dispatcher_module.repo, "claim_due", counted)
    dispatcher = helpers.dispatcher(settings, session_factory, cycles_in_flight=2)
    with _running(dispatcher):
        time.sleep(0.5)
        # One small trace: a partial batch is no backlog, so the helper stays asleep.
        helpers.record(session_factory, settings, [helpers.message_for(app_id)])
        collector.wait_for(lambda: helpers.states(session_factory) == {"delivered": 1})
        time.sleep(0.3)
    assert claims.get("test-dispatcher", 0) >= 3
    assert {name for name in claims if name != "test-dispatcher"} == set()


def test_stop_ends_every_cycle_and_leaves_no_row_leased(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """``request_stop`` while two cycles wait on a slow Langfuse: ``run`` returns, its cycle
    threads are gone, and each row is delivered or due again, none still leased."""
    dispatcher, overlap = _slow_backlog(
        collector, settings, session_factory, app_id, traces=30, latency=0.3, cycles=2
    )
    with _running(dispatcher):
        collector.wait_for(lambda: overlap.most == 2, timeout=20)
    assert not [t for t in threading.enumerate() if t.name.startswith("opstrail-cycle")]
    rows = helpers.rows(session_factory)
    assert all(row.lease_owner is None for row in rows)
    assert {row.state for row in rows} <= {"delivered", "pending"}


def test_cycles_in_flight_must_be_positive() -> None:
    """A dispatcher with no cycle could never send: refused when configured."""
    with pytest.raises(ValueError, match="cycles_in_flight"):
        DispatchOptions(cycles_in_flight=0)


def test_the_deployment_setting_sets_the_cycles(tmp_path: Any) -> None:
    """``OPSTRAIL_DISPATCH_CYCLES`` reaches the dispatcher options (default 2)."""
    from opstrail.services.bootstrap import dispatch_options

    assert dispatch_options(Settings(data_dir=tmp_path)).cycles_in_flight == 2
    assert dispatch_options(Settings(data_dir=tmp_path, dispatch_cycles=3)).cycles_in_flight == 3


def test_the_deployment_setting_sets_the_linger(tmp_path: Any) -> None:
    """``OPSTRAIL_DISPATCH_LINGER`` reaches the dispatcher options (default 0.2 s)."""
    from opstrail.services.bootstrap import dispatch_options

    assert dispatch_options(Settings(data_dir=tmp_path)).linger == 0.2
    assert dispatch_options(Settings(data_dir=tmp_path, dispatch_linger=0.05)).linger == 0.05


def test_a_cycle_starts_no_request_once_half_its_lease_is_gone(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """A cycle whose requests are slow gives its remaining rows back while its lease still
    holds, so another cycle never takes over rows still being sent: every observation
    arrives exactly once even though a cycle's requests together outlast the lease."""
    infos = [helpers.message_for(app_id) for _ in range(20)]
    helpers.record(session_factory, settings, infos)
    collector.set_faults(latency_seconds=0.6, targets=("otel",))
    dispatcher = helpers.dispatcher(
        settings, session_factory, batch_size=5, cycles_in_flight=2, lease_seconds=2.0,
        max_batch_bytes=1,  # one request per trace: five in a row take 3 s
    )
    expected = {o.id for info in infos for o in build_trace(info).observations}
    with _running(dispatcher):
        collector.wait_for(
            lambda: helpers.states(session_factory) == {"delivered": 20}, timeout=90
        )
    assert collector.observation_ids() == expected
    assert collector.copy_count() == len(expected)


def test_the_claim_leases_only_rows_still_due_when_it_writes(
    backend_database: tuple[Settings, sessionmaker[Session], Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between picking ids and leasing them, a row may be cancelled or leased elsewhere: the
    lease skips it and the claim does not return it (forced here with a pick that ignores
    every condition)."""
    settings, sessions, _ = backend_database
    routed, plain = helpers.create_app(sessions), helpers.create_app(sessions)
    with running_collector() as collector:
        helpers.configure_tracing(sessions, settings, routed, collector.url)
    helpers.record(sessions, settings, [helpers.message_for(routed) for _ in range(2)])
    helpers.record(sessions, settings, [helpers.message_for(plain)])  # unrouted
    now = utcnow()
    with sessions() as session:
        taken = repo.claim_due(session, owner="other", now=now,
                               lease_until=now + timedelta(seconds=60), limit=1)
        session.commit()
    picks = repo._claim_statements(settings.is_sqlite is False, False)
    everything = select(OutboxRow.id).order_by(OutboxRow.id)
    monkeypatch.setattr(repo, "_claim_statements", lambda *_: (everything, *picks[1:]))
    with sessions() as session:
        claimed = repo.claim_due(session, owner="me", now=now,
                                 lease_until=now + timedelta(seconds=60), limit=10)
        session.commit()
    rows = {row.id: row for row in helpers.rows(sessions)}
    assert [row.id for row in claimed] == [
        i for i, row in rows.items() if row.app_id == routed and i != taken[0].id
    ]
    assert {i: row.lease_owner for i, row in rows.items()} == {
        taken[0].id: "other", claimed[0].id: "me",
        **{i: None for i, row in rows.items() if row.app_id == plain},
    }


def test_a_changed_rating_waits_for_the_rating_it_replaces(
    backend_database: tuple[Settings, sessionmaker[Session], Engine],
) -> None:
    """While a like is in flight, the dislike that replaces it is not claimed (a second
    cycle or worker would race it to Langfuse); once the like is settled, it is."""
    settings, sessions, _ = backend_database
    app_id = helpers.create_app(sessions)
    with running_collector() as collector:
        helpers.configure_tracing(sessions, settings, app_id, collector.url)
    info = helpers.message_for(app_id)
    helpers.record(sessions, settings, [info])
    like = replace(samples.feedback("like", message_id=info.message_id), context=info.context)
    with sessions() as session:
        record_feedback(session, settings, like)
        session.commit()
    now = utcnow()
    lease = {"now": now, "lease_until": now + timedelta(seconds=60), "limit": 10}
    with sessions() as session:
        in_flight = repo.claim_due(session, owner="first", **lease)
        session.commit()
    assert [row.kind for row in in_flight] == ["message", "score"]
    with sessions() as session:
        record_feedback(session, settings, replace(like, rating="dislike"))
        session.commit()
    moment = utcnow()
    with sessions() as session:
        assert repo.claim_due(
            session, owner="second", now=moment, lease_until=moment + timedelta(seconds=60),
            limit=10,
        ) == []
        session.commit()
    with sessions() as session:
        session.execute(update(OutboxRow).where(OutboxRow.id == in_flight[1].id).values(
            state="delivered", lease_owner=None, lease_until=None))
        session.commit()
    later = utcnow()
    with sessions() as session:
        [dislike] = repo.claim_due(
            session, owner="second", now=later, lease_until=later + timedelta(seconds=60),
            limit=10,
        )
        session.commit()
    assert dislike.kind == "score" and dislike.id > in_flight[1].id


def test_a_resend_after_half_the_lease_is_given_back_too(
    collector: CollectorHandle,
    settings: Settings,
    session_factory: sessionmaker[Session],
    app_id: str,
) -> None:
    """The half-lease rule holds for every request of a cycle, the halves of a refused batch
    included: a 400 that comes back after half the lease leaves its rows due, untried."""
    helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(4)])
    collector.set_faults(fail_next=1, fail_status=400, latency_seconds=0.7, targets=("otel",))
    dispatcher = helpers.dispatcher(settings, session_factory, lease_seconds=1.0)
    assert dispatcher.run_once() == 4
    dispatcher.close()
    assert collector.requests().get("otel") == 1
    rows = helpers.rows(session_factory)
    assert {(row.state, row.attempts, row.lease_owner) for row in rows} == {("pending", 0, None)}

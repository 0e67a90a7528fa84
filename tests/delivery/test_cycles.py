"""Cycles in flight: ``Dispatcher.run`` keeps a second cycle going while a backlog lasts, so
one cycle's request waits on Langfuse while another claims or records. Proven against a real
collector that answers slowly, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle
from opstrail.delivery import dispatcher as dispatcher_module
from opstrail.delivery.dispatcher import Dispatcher, DispatchOptions
from opstrail.settings import Settings
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

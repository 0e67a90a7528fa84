"""``opstrail worker`` processes: several on one PostgreSQL outbox, SQLite exclusivity,
and a bounded, releasing shutdown on SIGTERM."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import running_collector
from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema
from opstrail.tracing.build import build_trace

from . import helpers
from .workers import start_worker, stop_all


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app_rows(session_factory: sessionmaker[Session], app_id: str) -> list:
    return [r for r in helpers.rows(session_factory) if r.app_id == app_id]


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_deliver_every_row_once_when_sharing_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    """Three worker processes on one PostgreSQL outbox deliver every trace, none twice."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=postgres_url, loopback_only_hosts=True
    )
    engine = make_engine(settings)
    ensure_schema(engine)
    session_factory = make_session_factory(engine)
    with running_collector() as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        infos = [helpers.message_for(app_id) for _ in range(600)]
        for start in range(0, len(infos), 100):
            helpers.record(session_factory, settings, infos[start : start + 100])
        port = _free_port()
        workers = [
            start_worker(
                settings, "--batch-size", "20", *(("--metrics-port", str(port)) if i == 0 else ()),
                log=tmp_path / f"w{i}.log",
            )
            for i in range(3)
        ]
        try:
            collector.wait_for(
                lambda: all(r.state == "delivered" for r in _app_rows(session_factory, app_id)),
                timeout=120,
                interval=0.2,
            )
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            codes = stop_all(workers)
        # The first worker's own metrics: its share of the deliveries, and the outbox totals.
        assert "opstrail_traces_delivered_total{" in scraped
        assert 'opstrail_outbox_rows{state="delivered"}' in scraped
        expected = {o.id for info in infos for o in build_trace(info).observations}
        received = collector.observations()
        assert {o["id"] for o in received} == expected
        assert collector.duplicates() == []  # no observation arrived twice
        rows = _app_rows(session_factory, app_id)
        assert all(r.attempts == 1 for r in rows)
        assert codes == [0, 0, 0]
    engine.dispose()


def test_worker_refuses_sqlite_when_server_dispatcher_holds_lease(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """On SQLite `opstrail worker` exits with an error while another dispatcher holds the lease."""
    holder = helpers.dispatcher(settings, session_factory)
    holder.acquire_single_lease()
    try:
        worker = start_worker(settings, log=tmp_path / "worker.log")
        code = worker.wait(60)
    finally:
        holder.close()
    assert code == 2
    assert "another dispatcher" in (tmp_path / "worker.log").read_text()


def test_worker_releases_inflight_batch_when_sigterm(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """SIGTERM during a slow request: the worker exits within its grace and leaves no row
    leased; nothing is lost (rows are delivered or due again)."""
    with running_collector() as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        helpers.record(session_factory, settings, [helpers.message_for(app_id) for _ in range(5)])
        collector.set_faults(latency_seconds=8)
        worker = start_worker(settings, "--grace", "1", log=tmp_path / "worker.log")
        try:
            collector.wait_for(
                lambda: any(r.lease_owner for r in helpers.rows(session_factory)), timeout=30
            )
            time.sleep(0.5)  # the request is in flight (the collector holds it 8 s)
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(15)
        finally:
            stop_all([worker])
        rows = helpers.rows(session_factory)
        assert code == 0
        # Released, not finished: the 1 s grace ended long before the 8 s answer.
        assert [(r.state, r.lease_owner, r.lease_until) for r in rows] == [
            ("pending", None, None)
        ] * 5

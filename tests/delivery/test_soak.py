"""A bounded soak: 2,000 traces through a failing collector and a worker killed twice."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.faults import FaultConfig
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.settings import Settings
from opstrail.tracing.build import build_trace

from . import helpers
from .workers import start_worker, stop_all

WORKER_ARGS = ("--lease-seconds", "5", "--retry-base", "0.2", "--retry-cap", "2", "--grace", "2")
FAULTS = FaultConfig(error_rate=0.3, error_status=503, partial_error_rate=0.05, seed=11)


def _start_when_lease_free(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start a worker; on SQLite it refuses (exit 2) until a killed worker's lease expires."""
    deadline = time.monotonic() + 30
    while True:
        worker = start_worker(settings, *WORKER_ARGS, log=log)
        time.sleep(2.0)
        if worker.poll() is None:
            return worker
        assert worker.returncode == 2, f"worker failed: see {log}"
        assert time.monotonic() < deadline, "the killed worker's lease never expired"


def _kill(worker: subprocess.Popen[bytes]) -> None:
    worker.kill()
    worker.wait(10)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_soak_delivers_every_observation_when_collector_fails_and_worker_killed(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """30% 503s, 429s with Retry-After, 207 partial errors, a 20 s outage and two SIGKILLs:
    every expected observation arrives, and every re-sent copy is identical."""
    log = tmp_path / "worker.log"
    with running_collector(langfuse_version="3.30.0") as collector:
        otlp_app = helpers.create_app(session_factory)
        legacy_app = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, otlp_app, collector.url)
        helpers.configure_tracing(
            session_factory, settings, legacy_app, collector.url, ingestion_path="legacy"
        )
        infos = []
        for i in range(1000):
            for app_id in (otlp_app, legacy_app):
                if i % 4 == 0:
                    infos.append(helpers.workflow_for(app_id, n_nodes=4))
                else:
                    infos.append(helpers.message_for(app_id))
        for start in range(0, len(infos), 250):
            helpers.record(session_factory, settings, infos[start : start + 250])
        collector.set_faults(FAULTS)
        worker = _start_when_lease_free(settings, log)
        try:
            time.sleep(1.5)
            _kill(worker)  # first SIGKILL, mid-delivery
            worker = _start_when_lease_free(settings, log)
            collector.set_faults(
                FaultConfig(
                    error_rate=0.3, partial_error_rate=0.05, seed=12,
                    fail_next=3, fail_status=429, retry_after_seconds=2,
                )
            )
            time.sleep(1.0)
            collector.set_faults(
                FaultConfig(error_rate=0.3, partial_error_rate=0.05, seed=13, down_for_seconds=20)
            )
            time.sleep(5.0)
            _kill(worker)  # second SIGKILL, during the outage
            worker = _start_when_lease_free(settings, log)
            _wait_delivered(collector, session_factory)
        finally:
            stop_all([worker])
        expected = {o.id for info in infos for o in build_trace(info).observations}
        received = {o["id"] for o in collector.observations()}
        assert received == expected
        duplicates = collector.duplicates()
        assert all(d.identical for d in duplicates), [d for d in duplicates if not d.identical]


def _wait_delivered(collector: CollectorHandle, session_factory: sessionmaker[Session]) -> None:
    progress: list[tuple[float, dict[str, int]]] = []
    started = time.monotonic()

    def done() -> bool:
        counts = helpers.states(session_factory)
        if not progress or time.monotonic() - started - progress[-1][0] >= 10:
            progress.append((round(time.monotonic() - started), counts))
        return counts == {"delivered": 2000}

    try:
        collector.wait_for(done, timeout=150, interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"not all delivered; progress {progress}") from exc

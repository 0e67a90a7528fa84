"""The server's embedded dispatcher and its /metrics: started and stopped with the app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from opstrail.api import metrics
from opstrail.api.app import create_app
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.settings import Settings
from opstrail.storage.tables.outbox import DispatcherLease

from . import helpers


@pytest.fixture(name="collector")
def _collector() -> Iterator[CollectorHandle]:
    with running_collector() as handle:
        yield handle


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def test_embedded_dispatcher_delivers_and_metrics_count_when_serving(
    collector: CollectorHandle, settings: Settings
) -> None:
    """With the server up, a recorded trace is delivered by the embedded dispatcher and
    /metrics shows it recorded, delivered and timed; stopping the app frees the lease."""
    app = create_app(settings)
    if not any(getattr(r, "path", None) == "/metrics" for r in app.routes):
        app.include_router(metrics.router)  # until the app includes it itself
    with TestClient(app) as client:
        sessions = app.state.session_factory
        app_id = helpers.create_app(sessions)
        helpers.configure_tracing(sessions, settings, app_id, collector.url)
        info = helpers.workflow_for(app_id, n_nodes=3)
        helpers.record(sessions, settings, [info])
        collector.wait_for(lambda c: len(c.observations()) == 4, timeout=20)
        text = ""
        for _ in range(100):
            text = client.get("/metrics").text
            if _metric(text, "opstrail_traces_delivered_total") == 1:
                break
        assert _metric(text, "opstrail_traces_recorded_total") == 1
        assert _metric(text, "opstrail_traces_delivered_total") == 1
        assert _metric(text, "opstrail_observations_delivered_total") == 4
        assert _metric(text, "opstrail_delivery_latency_seconds_count") == 1
        assert 'opstrail_outbox_rows{state="delivered"} 1.0' in text
        with sessions() as session:
            assert session.scalars(select(DispatcherLease)).all() != []
    with app.state.session_factory() as session:
        assert session.scalars(select(DispatcherLease)).all() == []


def test_embedded_dispatcher_stays_off_when_disabled(settings: Settings) -> None:
    """With embedded_dispatcher off (serve --no-dispatcher) no dispatcher starts."""
    app = create_app(settings.model_copy(update={"embedded_dispatcher": False}))
    with TestClient(app):
        assert app.state.dispatcher is None
        with app.state.session_factory() as session:
            assert session.scalars(select(DispatcherLease)).all() == []

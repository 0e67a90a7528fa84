"""The ingestion path of a destination is probed again once a day (servers get upgraded)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.tables.tracing import TracingProviderConfig

from . import helpers


def _age_config(session_factory: sessionmaker[Session], *, path: str, days: float) -> None:
    """Pretend the config was validated ``days`` ago, when the server wanted ``path``."""
    with session_factory() as session:
        config = session.scalars(select(TracingProviderConfig)).one()
        config.ingestion_path = path
        config.server_version = "3.10.0" if path == "legacy" else config.server_version
        config.validated_at = utcnow() - timedelta(days=days)
        session.commit()


def _endpoints(collector: CollectorHandle) -> list[str]:
    return [record.path for record in collector.request_log()]


def test_dispatcher_reprobes_day_old_path_and_sends_otlp_to_upgraded_server(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A config validated two days ago against a v3.10 server (legacy path) is probed again
    before sending; the server is now 4.16, so the trace goes over OTLP, never to the legacy
    endpoint that v4 would refuse."""
    with running_collector(langfuse_version="4.16.0") as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        _age_config(session_factory, path="legacy", days=2)
        helpers.record(session_factory, settings, [helpers.message_for(app_id)])
        dispatcher = helpers.dispatcher(settings, session_factory)
        helpers.drain(dispatcher)
        dispatcher.close()
        assert helpers.states(session_factory) == {"delivered": 1}
        endpoints = _endpoints(collector)
        assert any("health" in e for e in endpoints), endpoints
        assert not any("ingestion" in e for e in endpoints), endpoints


def test_dispatcher_keeps_recently_probed_path_without_probing(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A config validated an hour ago is trusted: no health request before sending."""
    with running_collector(langfuse_version="4.16.0") as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        _age_config(session_factory, path="otlp", days=1 / 24)
        before = len([e for e in _endpoints(collector) if "health" in e])
        helpers.record(session_factory, settings, [helpers.message_for(app_id)])
        dispatcher = helpers.dispatcher(settings, session_factory)
        helpers.drain(dispatcher)
        dispatcher.close()
        assert helpers.states(session_factory) == {"delivered": 1}
        assert len([e for e in _endpoints(collector) if "health" in e]) == before

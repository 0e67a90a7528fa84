"""Fixtures for delivery tests: a migrated database and a session factory, both database
backends, a collector and an app traced to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema


@pytest.fixture(name="engine")
def _engine(settings: Settings) -> Iterator[Engine]:
    """A migrated SQLite engine on the test's data dir."""
    engine = make_engine(settings)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(name="session_factory")
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture(name="backend", params=["sqlite", "postgresql"])
def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on SQLite, then on a throwaway PostgreSQL database."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("own_postgres_url")
    return Settings(data_dir=tmp_path / "data", database_url=url, loopback_only_hosts=True)


@pytest.fixture(name="backend_database")
def _backend_database(backend: Settings) -> Iterator[tuple[Settings, sessionmaker[Session], Engine]]:
    """Settings, session factory and engine of a migrated database on each backend."""
    engine = make_engine(backend)
    ensure_schema(engine)
    yield backend, make_session_factory(engine), engine
    engine.dispose()


@pytest.fixture(name="collector")
def _collector() -> Iterator[CollectorHandle]:
    """A Langfuse 4.x-like collector on 127.0.0.1 (OTLP, scores)."""
    with running_collector() as handle:
        yield handle


@pytest.fixture(name="app_id")
def _app_id(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> str:
    """An app whose tracing is configured (and validated) against the collector."""
    from . import helpers

    app_id = helpers.create_app(session_factory)
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    return app_id

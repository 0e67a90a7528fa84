"""Fixtures for delivery tests: a migrated database and a session factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

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

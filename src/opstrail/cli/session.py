"""A database session for one CLI command: engine built from the settings, schema upgraded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema


@contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    """Yield a session on the settings' database after bringing its schema up to date.

    The engine lives only as long as the block: it is disposed on the way out, error or not.
    """
    engine = make_engine(settings)
    try:
        ensure_schema(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()

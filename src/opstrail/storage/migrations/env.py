"""Alembic environment: migrations run on the engine handed in by ``storage.schema``, or on
the URL of ``Settings`` when Alembic is run by hand."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import opstrail.storage.tables  # noqa: F401  (registers every table)
from opstrail.settings import Settings
from opstrail.storage.base import Base
from opstrail.storage.engine import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = make_engine(Settings())
    try:
        with engine.begin() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            context.run_migrations()
    finally:
        if owned:
            engine.dispose()


run_migrations_online()

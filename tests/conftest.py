"""Shared fixtures: a fresh SQLite data dir, and a throw-away PostgreSQL database.

PostgreSQL tests use the real server at ``OPSTRAIL_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test session creates its own database
there and drops it afterwards, so parallel runs never collide. Without a server they skip
with a clear message; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from opstrail.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "OPSTRAIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

for _name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_HOST"):
    os.environ.pop(_name, None)


@pytest.fixture(name="settings")
def _settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite data dir, loopback-only tracing hosts, no env leakage."""
    return Settings(
        data_dir=tmp_path / "data",
        console_token="test-console-token",
        secret_key=None,
        loopback_only_hosts=True,
    )


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL not available ({reason}); start it to run this test")


@contextmanager
def _throwaway_postgres_database() -> Iterator[str]:
    """Create an empty database on the test server; yield its SQLAlchemy URL; drop it."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover
        _postgres_unavailable(f"psycopg missing: {exc}")
    name = f"opstrail_t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _postgres_unavailable(str(exc).strip().splitlines()[0])
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(name="postgres_url", scope="session")
def _postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database for this test session (dropped after)."""
    with _throwaway_postgres_database() as url:
        yield url


@pytest.fixture(name="own_postgres_url")
def _own_postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database for this test alone (for schema changes)."""
    with _throwaway_postgres_database() as url:
        yield url

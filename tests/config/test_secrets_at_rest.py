"""No Langfuse key is stored in plaintext: byte scans of the SQLite files and a pg_dump."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from config.factories import console, langfuse_body
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.settings import Settings

# Distinctive keys, so a hit can only be a leak.
SCAN_KEYS = ("pk-lf-scan-7f3a9c51d0", "sk-lf-scan-secret-91d2e4b8aa", "proj-scan")
OTHER_SCAN_KEYS = ("pk-lf-scan-second-44ab", "sk-lf-scan-second-secret-c3", "proj-scan-2")


@pytest.fixture(name="collector", scope="module")
def _collector() -> Iterator[CollectorHandle]:
    with running_collector(keys=[SCAN_KEYS, OTHER_SCAN_KEYS]) as handle:
        yield handle


def _save_and_change(settings: Settings, collector: CollectorHandle) -> None:
    """Save a config, enable it, and replace both keys (old values must not linger either)."""
    with console(settings) as (client, app_id):
        prefix = f"/console/api/apps/{app_id}"
        saved = client.post(
            f"{prefix}/trace-config", json=langfuse_body(collector.url, *SCAN_KEYS[:2])
        )
        assert saved.status_code == 200, saved.text
        assert client.post(f"{prefix}/trace", json={"enabled": True}).status_code == 200
        changed = client.patch(
            f"{prefix}/trace-config", json=langfuse_body(collector.url, *OTHER_SCAN_KEYS[:2])
        )
        assert changed.status_code == 200, changed.text
        for answer in (saved, changed, client.get(f"{prefix}/trace-config")):
            for key in (*SCAN_KEYS[:2], *OTHER_SCAN_KEYS[:2]):
                assert key not in answer.text


def _leaks(data: bytes) -> list[str]:
    return [k for k in (*SCAN_KEYS[:2], *OTHER_SCAN_KEYS[:2]) if k.encode() in data]


def test_sqlite_files_hold_no_key_when_config_saved(
    settings: Settings, collector: CollectorHandle
) -> None:
    """The SQLite database, its WAL and shared-memory files hold neither key in plaintext."""
    _save_and_change(settings, collector)
    files = sorted(settings.data_dir.glob("opstrail.db*"))
    assert any(f.name == "opstrail.db" for f in files)
    for path in files:
        assert _leaks(path.read_bytes()) == [], path.name


@pytest.mark.postgres
def test_postgres_dump_holds_no_key_when_config_saved(
    settings: Settings, collector: CollectorHandle, postgres_url: str, tmp_path: Path
) -> None:
    """A pg_dump of the PostgreSQL database holds neither key in plaintext, but does hold
    the configuration (so the scan looked at the right data)."""
    _save_and_change(settings.model_copy(update={"database_url": postgres_url}), collector)
    url = make_url(postgres_url).set(drivername="postgresql")
    dump = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            "--data-only",
            "--dbname",
            url.render_as_string(hide_password=False),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert b"proj-scan-2" in dump  # the project id is stored in plaintext, by design
    assert _leaks(dump) == []

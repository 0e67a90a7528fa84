"""Fixtures: a running collector (real HTTP on 127.0.0.1) and an httpx client for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from opstrail.collector.testing import CollectorHandle, running_collector

KEYS = (
    ("pk-lf-test", "sk-lf-test", "proj-test"),
    ("pk-lf-other", "sk-lf-other", "proj-other"),
    ("pk-lf-none", "sk-lf-none", None),
    ("pk-lf-org", "sk-lf-org", "!org"),
)
AUTH = ("pk-lf-test", "sk-lf-test")


@pytest.fixture(name="collector")
def _collector() -> Iterator[CollectorHandle]:
    """A v4.16.0 collector with a project key, another project, a project-less and an org key."""
    with running_collector(keys=KEYS) as handle:
        yield handle


@pytest.fixture(name="client")
def _client(collector: CollectorHandle) -> Iterator[httpx.Client]:
    """An httpx client on the collector with the test project's Basic auth."""
    with httpx.Client(base_url=collector.url, auth=AUTH, timeout=10) as client:
        yield client

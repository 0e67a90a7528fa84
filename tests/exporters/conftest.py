"""Fixtures of the exporter tests: a scripted Langfuse stand-in on 127.0.0.1 and a client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from exporters.server import ScriptedServer


@pytest.fixture(name="langfuse")
def _langfuse() -> Iterator[ScriptedServer]:
    """A scripted Langfuse stand-in listening on 127.0.0.1."""
    server = ScriptedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="client")
def _client() -> Iterator[httpx.Client]:
    """An HTTP client with short timeouts."""
    with httpx.Client(timeout=5.0) as client:
        yield client

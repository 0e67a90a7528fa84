"""A started server (TestClient over the real app) with the offline model fallback, and
helpers to import a DSL document and get its service API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from opstrail.api.app import create_app
from opstrail.services.apps import create_api_key, import_app
from opstrail.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dsl"


@pytest.fixture(name="offline_settings")
def _offline_settings(settings: Settings) -> Settings:
    """Test settings whose unknown model providers run on the offline model."""
    return settings.model_copy(update={"model_fallback": "offline", "code_timeout_seconds": 5.0,
                                       "embedded_dispatcher": False})


@pytest.fixture(name="client")
def _client(offline_settings: Settings) -> Iterator[TestClient]:
    """The opstrail app, started (lifespan), driven in-process."""
    with TestClient(create_app(offline_settings)) as client:
        yield client


def install(client: TestClient, yaml_content: str) -> tuple[str, dict[str, str]]:
    """Import a DSL document; returns the app id and the service API headers."""
    state = client.app.state  # type: ignore[attr-defined]
    with state.session_factory() as session:
        result = import_app(session, state.settings, yaml_content=yaml_content,
                            tenant_id=state.tenant_id, account_id=state.account_id)
        token = create_api_key(session, result.app_id)
    return result.app_id, {"Authorization": f"Bearer {token}"}


def dsl(mode: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **workflow: Any
        ) -> str:
    """A DSL document around a graph."""
    return yaml.safe_dump({
        "app": {"name": f"test {mode}", "mode": mode},
        "kind": "app",
        "version": "0.1.5",
        "workflow": {"graph": {"nodes": nodes, "edges": edges}, "features": {}, **workflow},
    }, allow_unicode=True)


def sse_events(text: str) -> list[dict[str, Any]]:
    """The ``data:`` events of an SSE body."""
    import json

    return [json.loads(line[len("data: "):]) for line in text.splitlines()
            if line.startswith("data: ")]

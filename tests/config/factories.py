"""Test helpers for tracing configuration: an app row, a running console API, settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from opstrail.api.app import create_app
from opstrail.settings import Settings
from opstrail.storage.tables.apps import App

CONSOLE_HEADERS = {"Authorization": "Bearer test-console-token"}
GOOD_KEYS = ("pk-lf-test", "sk-lf-test", "proj-test")
ORG_KEYS = ("pk-lf-org", "sk-lf-org", "!org")
NO_PROJECT_KEYS = ("pk-lf-none", "sk-lf-none", None)


def add_app(session: Session, tenant_id: str, *, name: str = "Support bot") -> str:
    """Insert an app row of ``tenant_id`` and return its id."""
    app_id = str(uuid.uuid4())
    session.add(App(id=app_id, tenant_id=tenant_id, name=name, mode="chat", dsl="app: {}\n"))
    session.commit()
    return app_id


@contextmanager
def console(settings: Settings, *, dispatcher: bool = False) -> Iterator[tuple[TestClient, str]]:
    """A started console API (lifespan run) and the id of one app in it; the embedded
    dispatcher runs only when asked, so outbox rows stay where a test put them."""
    app = create_app(settings.model_copy(update={"embedded_dispatcher": dispatcher}))
    with TestClient(app, headers=CONSOLE_HEADERS) as client:
        with app.state.session_factory() as session:
            app_id = add_app(session, app.state.tenant_id)
        yield client, app_id


def langfuse_body(
    host: str, public_key: str = GOOD_KEYS[0], secret_key: str = GOOD_KEYS[1]
) -> dict[str, object]:
    """A POST /trace-config body for Langfuse."""
    return {
        "tracing_provider": "langfuse",
        "tracing_config": {"public_key": public_key, "secret_key": secret_key, "host": host},
    }

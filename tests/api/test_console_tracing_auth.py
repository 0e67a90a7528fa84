"""Console API authentication with a generated token (only its hash on disk)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from config.factories import add_app
from opstrail.api.app import create_app
from opstrail.settings import Settings


def test_console_api_accepts_generated_token_when_none_configured(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a configured token, the generated one (printed once) opens the console API and
    anything else is 401."""
    unconfigured = settings.model_copy(update={"console_token": None, "embedded_dispatcher": False})
    app = create_app(unconfigured)
    with TestClient(app) as client:
        with app.state.session_factory() as session:
            app_id = add_app(session, app.state.tenant_id)
        path = f"/console/api/apps/{app_id}/trace"
        assert client.get(path).status_code == 401
        token = next(
            line.rsplit(" ", 1)[-1]
            for line in capsys.readouterr().err.splitlines()
            if "console API token" in line
        )
        assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert (
            client.get(path, headers={"Authorization": "Bearer test-console-token"}).status_code
            == 401
        )
        assert client.get(path, headers={"Authorization": f"bearer {token}"}).status_code == 200

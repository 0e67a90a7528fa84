"""Console tracing API: Dify-compatible routes, validation against a real local collector over
loopback HTTP, the keep-unchanged rule, states and policy."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config.factories import (
    CONSOLE_HEADERS,
    GOOD_KEYS,
    NO_PROJECT_KEYS,
    ORG_KEYS,
    console,
    langfuse_body,
)
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.config.crypto import Keyring
from opstrail.config.obfuscation import obfuscate
from opstrail.delivery.outbox import enqueue_trace
from opstrail.settings import Settings
from opstrail.storage.tables.outbox import AppDeliveryState, OutboxRow
from opstrail.storage.tables.tracing import TracingProviderConfig
from opstrail.tracing import samples

STAR_KEYS = ("pk-lf-star", "sk-lf-st*r*secret", "proj-star")
OTHER_KEYS = ("pk-lf-other", "sk-lf-other-secret", "proj-other")


@pytest.fixture(name="collector", scope="module")
def _collector() -> Iterator[CollectorHandle]:
    """A local Langfuse-compatible collector with good, organization, project-less keys."""
    with running_collector(
        keys=[GOOD_KEYS, ORG_KEYS, NO_PROJECT_KEYS, STAR_KEYS, OTHER_KEYS]
    ) as handle:
        yield handle


@pytest.fixture(name="api")
def _api(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """A started console API and one app's URL prefix."""
    with console(settings) as (client, app_id):
        client.app_id = app_id  # type: ignore[attr-defined]
        yield client, f"/console/api/apps/{app_id}"


@pytest.fixture(name="not_langfuse")
def _not_langfuse() -> Iterator[str]:
    """A loopback HTTP server that answers every GET with an HTML page (not Langfuse)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Welcome to nginx</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stored_secrets(client: TestClient, settings: Settings) -> dict[str, str]:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        row = session.scalars(select(TracingProviderConfig)).one()
        return json.loads(Keyring.from_settings(settings).decrypt(row.secrets_ciphertext))


# --- authentication and unknown apps ------------------------------------------------------------


def test_console_tracing_answers_401_when_token_missing_or_wrong(
    api: tuple[TestClient, str],
) -> None:
    """Every tracing route needs the console token; a wrong one is 401 with code unauthorized."""
    client, prefix = api
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
    ):
        answer = client.get(f"{prefix}/trace", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "trace"),
        ("POST", "trace"),
        ("GET", "trace-config"),
        ("DELETE", "trace-config"),
        ("GET", "trace-status"),
        ("GET", "trace-policy"),
    ],
)
def test_console_tracing_answers_404_when_app_unknown(
    api: tuple[TestClient, str], method: str, path: str
) -> None:
    """An unknown app id is 404 app_not_found on every route."""
    client, _ = api
    body = {"enabled": False} if method == "POST" else None
    answer = client.request(
        method, f"/console/api/apps/00000000-0000-0000-0000-000000000000/{path}", json=body
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == "app_not_found"


# --- the switch and states ----------------------------------------------------------------------


def test_trace_switch_refuses_enable_when_not_configured(api: tuple[TestClient, str]) -> None:
    """Enabling without a saved configuration is 409 trace_config_not_exist and changes nothing."""
    client, prefix = api
    assert client.get(f"{prefix}/trace").json() == {"enabled": False, "tracing_provider": None}
    answer = client.post(f"{prefix}/trace", json={"enabled": True, "tracing_provider": "langfuse"})
    assert answer.status_code == 409
    assert answer.json()["code"] == "trace_config_not_exist"
    assert client.get(f"{prefix}/trace").json() == {"enabled": False, "tracing_provider": None}
    assert client.get(f"{prefix}/trace-status").json()["state"] == "not_configured"


def test_trace_config_get_answers_has_not_configured_when_none(api: tuple[TestClient, str]) -> None:
    """GET of an unsaved provider is 200 {"has_not_configured": true}, as Dify answers."""
    client, prefix = api
    answer = client.get(f"{prefix}/trace-config", params={"tracing_provider": "langfuse"})
    assert answer.status_code == 200
    assert answer.json() == {"has_not_configured": True}


def test_trace_config_lifecycle_moves_states_when_saved_enabled_deleted(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """not_configured -> disabled (saved) -> started (enabled) -> not_configured (deleted, which
    also switches tracing off)."""
    client, prefix = api
    assert (
        client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url)).status_code == 200
    )
    assert client.get(f"{prefix}/trace-status").json()["state"] == "disabled"
    answer = client.post(f"{prefix}/trace", json={"enabled": True, "tracing_provider": "langfuse"})
    assert answer.json() == {"result": "success"}
    status = client.get(f"{prefix}/trace-status").json()
    assert status["state"] == "started"
    assert status["server_version"] == "4.16.0" and status["ingestion_path"] == "otlp"
    assert client.get(f"{prefix}/trace-config").json()["is_active"] is True
    deleted = client.delete(f"{prefix}/trace-config", params={"tracing_provider": "langfuse"})
    assert deleted.status_code == 200 and deleted.json()["disabled"] is True
    assert client.get(f"{prefix}/trace").json() == {"enabled": False, "tracing_provider": None}
    assert client.get(f"{prefix}/trace-status").json()["state"] == "not_configured"


def test_delete_config_cancels_pending_rows_when_provider_active(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """Removing the active configuration cancels the app's rows waiting for delivery."""
    client, prefix = api
    app_id = client.app_id  # type: ignore[attr-defined]
    client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    client.post(f"{prefix}/trace", json={"enabled": True, "tracing_provider": "langfuse"})
    context = samples.run_context(app_id=app_id)
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        enqueue_trace(session, samples.chat_message(context=context), routed=True)
        session.commit()
    assert client.get(f"{prefix}/trace-status").json()["pending"] == 1
    assert client.delete(f"{prefix}/trace-config").json()["cancelled_rows"] == 1
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        assert [r.state for r in session.scalars(select(OutboxRow))] == ["cancelled"]


# --- saving and reading -------------------------------------------------------------------------


def test_trace_config_get_shows_hints_and_project_without_network(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """A saved config reads back with obfuscated keys, normalised host, project, server version
    and path, and reading it makes no request to the provider."""
    client, prefix = api
    saved = client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url + "/"))
    assert saved.status_code == 200, saved.text
    assert saved.json()["result"] == "success"
    before = dict(collector.requests())
    config = client.get(f"{prefix}/trace-config").json()
    assert collector.requests() == before
    assert config["tracing_config"] == {
        "public_key": obfuscate(GOOD_KEYS[0]),
        "secret_key": obfuscate(GOOD_KEYS[1]),
        "host": collector.url,
        "ingestion_path": None,
        "project_url": f"{collector.url}/project/proj-test",
    }
    assert config["project"]["id"] == "proj-test"
    assert config["server"]["version"] == "4.16.0"
    assert config["server"]["ingestion_path"] == "otlp"
    assert config["created_at"] and config["updated_at"]
    assert GOOD_KEYS[1] not in saved.text and GOOD_KEYS[1] not in json.dumps(config)


def test_trace_config_post_answers_409_when_exists(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """A second POST is 409 trace_config_is_exist; PATCH and DELETE without one are 404."""
    client, prefix = api
    assert (
        client.patch(f"{prefix}/trace-config", json=langfuse_body(collector.url)).status_code == 404
    )
    assert client.delete(f"{prefix}/trace-config").status_code == 404
    assert (
        client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url)).status_code == 200
    )
    again = client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    assert again.status_code == 409
    assert again.json()["code"] == "trace_config_is_exist"


def test_patch_keeps_keys_when_absent_or_exact_hint(
    api: tuple[TestClient, str], collector: CollectorHandle, settings: Settings
) -> None:
    """Sending back the hints (or nothing) keeps the stored keys and makes no new check."""
    client, prefix = api
    client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    shown = client.get(f"{prefix}/trace-config").json()["tracing_config"]
    projects_before = collector.requests().get("projects", 0)
    body = {
        "tracing_provider": "langfuse",
        "tracing_config": {
            "public_key": shown["public_key"],
            "secret_key": shown["secret_key"],
            "host": shown["host"],
        },
    }
    assert client.patch(f"{prefix}/trace-config", json=body).status_code == 200
    # The whole tracing_config of a GET, sent back as is (Dify's UI pre-fills the form).
    echoed = {"tracing_provider": "langfuse", "tracing_config": shown}
    assert client.patch(f"{prefix}/trace-config", json=echoed).status_code == 200
    assert (
        client.patch(
            f"{prefix}/trace-config", json={"tracing_provider": "langfuse", "tracing_config": {}}
        ).status_code
        == 200
    )
    assert collector.requests().get("projects", 0) == projects_before
    assert _stored_secrets(client, settings) == {
        "public_key": GOOD_KEYS[0],
        "secret_key": GOOD_KEYS[1],
    }


def test_patch_stores_secret_with_star_when_not_the_hint(
    api: tuple[TestClient, str], collector: CollectorHandle, settings: Settings
) -> None:
    """A real secret containing '*' is validated and stored, not mistaken for a hint."""
    client, prefix = api
    client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    answer = client.patch(
        f"{prefix}/trace-config", json=langfuse_body(collector.url, STAR_KEYS[0], STAR_KEYS[1])
    )
    assert answer.status_code == 200, answer.text
    assert _stored_secrets(client, settings) == {
        "public_key": STAR_KEYS[0],
        "secret_key": STAR_KEYS[1],
    }
    assert answer.json()["project"]["id"] == "proj-star"
    assert answer.json()["tracing_config"]["project_url"].endswith("/project/proj-star")


def test_patch_changes_nothing_when_validation_fails(
    api: tuple[TestClient, str], collector: CollectorHandle, settings: Settings
) -> None:
    """A PATCH with wrong keys is 422 unauthorized and the stored config stays as it was."""
    client, prefix = api
    client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    before = client.get(f"{prefix}/trace-config").json()
    answer = client.patch(
        f"{prefix}/trace-config", json=langfuse_body(collector.url, "pk-lf-wrong", "sk-lf-wrong")
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "unauthorized"
    assert "sk-lf-wrong" not in answer.text
    assert client.get(f"{prefix}/trace-config").json() == before
    assert _stored_secrets(client, settings) == {
        "public_key": GOOD_KEYS[0],
        "secret_key": GOOD_KEYS[1],
    }


# --- validation errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "code"),
    [
        (("pk-lf-wrong", "sk-lf-wrong"), "unauthorized"),
        (ORG_KEYS[:2], "organization_key"),
        (NO_PROJECT_KEYS[:2], "no_project"),
    ],
)
def test_trace_config_post_answers_422_with_code_when_keys_refused(
    api: tuple[TestClient, str], collector: CollectorHandle, keys: tuple[str, str], code: str
) -> None:
    """Wrong keys, an organization key and a key pair with no project each get their own code,
    and nothing is saved."""
    client, prefix = api
    answer = client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url, *keys))
    assert answer.status_code == 422
    assert answer.json()["code"] == code
    assert keys[1] not in answer.text
    assert client.get(f"{prefix}/trace-config").json() == {"has_not_configured": True}


def test_trace_config_post_answers_host_unreachable_when_port_closed(
    api: tuple[TestClient, str],
) -> None:
    """Nothing listening on the host's port is host_unreachable."""
    client, prefix = api
    answer = client.post(
        f"{prefix}/trace-config", json=langfuse_body(f"http://127.0.0.1:{_closed_port()}")
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "host_unreachable"


def test_trace_config_post_answers_not_langfuse_when_host_is_other_server(
    api: tuple[TestClient, str], not_langfuse: str
) -> None:
    """A reachable HTTP server that is not Langfuse is not_langfuse."""
    client, prefix = api
    answer = client.post(f"{prefix}/trace-config", json=langfuse_body(not_langfuse))
    assert answer.status_code == 422
    assert answer.json()["code"] == "not_langfuse"


@pytest.mark.parametrize(
    "host",
    [
        "http://169.254.169.254",
        "http://[fe80::1]:3000",
        "ftp://127.0.0.1",
        "http://metadata.google.internal",
        "https://cloud.langfuse.com",
    ],
)
def test_trace_config_post_answers_invalid_host_when_ssrf_target(
    api: tuple[TestClient, str], host: str
) -> None:
    """Metadata, link-local, non-http and (in loopback-only tests) non-loopback hosts are refused
    before any request."""
    client, prefix = api
    answer = client.post(f"{prefix}/trace-config", json=langfuse_body(host))
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_host"


def test_trace_config_post_refuses_private_host_when_refuse_private(settings: Settings) -> None:
    """With refuse_private_hosts, private addresses are invalid_host."""
    strict = settings.model_copy(
        update={"refuse_private_hosts": True, "loopback_only_hosts": False}
    )
    with console(strict) as (client, app_id):
        for host in ("http://10.0.0.8:3000", "http://192.168.1.2", "http://127.0.0.1:3000"):
            answer = client.post(
                f"/console/api/apps/{app_id}/trace-config", json=langfuse_body(host)
            )
            assert answer.status_code == 422
            assert answer.json()["code"] == "invalid_host"


@pytest.mark.parametrize(
    "body",
    [
        {"tracing_provider": "langsmith", "tracing_config": {}},
        {"tracing_provider": "langfuse", "tracing_config": {"public_key": "pk-lf-test"}},
        {
            "tracing_provider": "langfuse",
            "tracing_config": {
                "public_key": "pk lf",
                "secret_key": "sk",
                "host": "http://127.0.0.1:1",
            },
        },
        {
            "tracing_provider": "langfuse",
            "tracing_config": {
                "public_key": "sk-lf-a",
                "secret_key": "pk-lf-b",
                "host": "http://127.0.0.1:1",
            },
        },
        {
            "tracing_provider": "langfuse",
            "tracing_config": {"public_key": "a", "secret_key": "b", "color": "red"},
        },
        {"tracing_provider": "langfuse"},
        {"tracing_config": {}},
        {"tracing_provider": "langfuse", "tracing_config": {"public_key": 5}},
    ],
)
def test_trace_config_post_answers_400_when_body_malformed(
    api: tuple[TestClient, str], body: dict
) -> None:
    """Malformed bodies get a clear 400 with a code, never a 5xx."""
    client, prefix = api
    answer = client.post(f"{prefix}/trace-config", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in {
        "invalid_param",
        "invalid_tracing_config",
        "invalid_tracing_provider",
    }


def test_trace_config_save_logs_no_secret_when_validating(
    api: tuple[TestClient, str], collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a successful nor a refused save writes a key to the logs."""
    client, prefix = api
    with caplog.at_level(logging.DEBUG):
        client.post(
            f"{prefix}/trace-config",
            json=langfuse_body(collector.url, "pk-lf-wrong", "sk-lf-wrong-logged"),
        )
        client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    assert "sk-lf-wrong-logged" not in caplog.text
    assert GOOD_KEYS[1] not in caplog.text


# --- policy -------------------------------------------------------------------------------------


def test_policy_is_saved_with_config_and_via_trace_policy(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """The policy can be set with the config (POST/PATCH "policy") or on its own; bad values 400."""
    client, prefix = api
    body = {
        **langfuse_body(collector.url),
        "policy": {"content_mode": "masked", "sample_rate": 0.5},
    }
    saved = client.post(f"{prefix}/trace-config", json=body).json()
    assert saved["policy"]["content_mode"] == "masked" and saved["policy"]["sample_rate"] == 0.5
    changed = client.put(
        f"{prefix}/trace-policy",
        json={"content_mode": "metadata-only", "mask_patterns": ["ACME-\\d+"]},
    )
    assert changed.status_code == 200
    assert changed.json() == {
        "content_mode": "metadata-only",
        "mask_patterns": ["ACME-\\d+"],
        "sample_rate": 0.5,
    }
    assert client.get(f"{prefix}/trace-config").json()["policy"] == changed.json()
    for bad in (
        {"sample_rate": 2},
        {"content_mode": "none"},
        {"mask_patterns": ["(x"]},
        {"mask_patterns": [".*"]},
    ):
        answer = client.put(f"{prefix}/trace-policy", json=bad)
        assert answer.status_code == 400, bad
    assert client.get(f"{prefix}/trace-policy").json() == changed.json()


def test_console_headers_constant_matches_fixture_token(settings: Settings) -> None:
    """The helper's token is the one the settings fixture configures (guards the helpers)."""
    assert CONSOLE_HEADERS["Authorization"] == f"Bearer {settings.console_token}"


# --- re-probing -----------------------------------------------------------------------------------


def test_patch_host_reprobes_and_stores_legacy_path_when_server_old(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """Changing only the host re-validates the stored keys there and stores the new server's
    version and path (legacy for Langfuse 2.x)."""
    client, prefix = api
    client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    with running_collector(keys=[GOOD_KEYS], langfuse_version="2.95.0") as old_server:
        body = {"tracing_provider": "langfuse", "tracing_config": {"host": old_server.url}}
        answer = client.patch(f"{prefix}/trace-config", json=body)
        assert answer.status_code == 200, answer.text
        assert old_server.requests().get("projects", 0) == 1
    config = answer.json()
    assert config["tracing_config"]["host"] == old_server.url
    assert config["server"] == {**config["server"], "version": "2.95.0", "ingestion_path": "legacy"}
    assert config["tracing_config"]["public_key"] == obfuscate(GOOD_KEYS[0])


def test_check_revalidates_saved_config_when_asked(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """POST /trace-config/check validates again: success refreshes the check time; a server
    that now refuses the keys gives 422 and leaves the config as it was."""
    client, prefix = api
    assert client.post(f"{prefix}/trace-config/check").status_code == 404
    with running_collector(keys=[GOOD_KEYS]) as server:
        client.post(f"{prefix}/trace-config", json=langfuse_body(server.url))
        before = client.get(f"{prefix}/trace-config").json()
        checked = client.post(f"{prefix}/trace-config/check")
        assert checked.status_code == 200
        assert checked.json()["server"]["validated_at"] >= before["server"]["validated_at"]
    # The server is gone now.
    failed = client.post(f"{prefix}/trace-config/check", params={"tracing_provider": "langfuse"})
    assert failed.status_code == 422
    assert failed.json()["code"] == "host_unreachable"
    assert client.get(f"{prefix}/trace-config").json()["tracing_config"] == before["tracing_config"]


def test_trace_status_shows_delivery_failure_only_for_current_destination(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """A dispatcher-recorded 401 on the configured destination makes the state unauthorized
    (with the last error); once the config points elsewhere, the stale state is ignored."""
    client, prefix = api
    app_id = client.app_id  # type: ignore[attr-defined]
    client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
    client.post(f"{prefix}/trace", json={"enabled": True})
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        session.add(
            AppDeliveryState(
                app_id=app_id,
                destination_key=f"{collector.url}#proj-test",
                state="unauthorized",
                paused=True,
                last_error_code="unauthorized",
                last_error_message="Invalid credentials",
            )
        )
        session.commit()
    status = client.get(f"{prefix}/trace-status").json()
    assert status["state"] == "unauthorized"
    assert status["last_error"] == {"code": "unauthorized", "message": "Invalid credentials"}
    other = langfuse_body(collector.url, *OTHER_KEYS[:2])
    assert client.patch(f"{prefix}/trace-config", json=other).status_code == 200
    assert client.get(f"{prefix}/trace-status").json()["state"] == "started"


def test_trace_config_post_answers_tls_error_when_https_to_plain_server(
    api: tuple[TestClient, str], collector: CollectorHandle
) -> None:
    """https:// to a server that speaks plain HTTP fails the TLS handshake: tls_error."""
    client, prefix = api
    host = collector.url.replace("http://", "https://")
    answer = client.post(f"{prefix}/trace-config", json=langfuse_body(host))
    assert answer.status_code == 422
    assert answer.json()["code"] == "tls_error"

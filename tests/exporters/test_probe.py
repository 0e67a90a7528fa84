"""probe_server and check_credentials against a scripted server on loopback."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporters.certs import self_signed
from exporters.server import Answer, ScriptedServer
from opstrail.errors import TracingConfigError
from opstrail.exporters.base import IngestionPath
from opstrail.exporters.probe import (
    HEALTH_PATH,
    PROJECTS_PATH,
    check_credentials,
    parse_version,
    path_for_version,
    probe_server,
)

pytestmark = pytest.mark.timeout(60)

PROJECTS = {
    "data": [{"id": "proj-1", "name": "Support bot", "organization": {"id": "o", "name": "O"}}]
}


@pytest.mark.parametrize(
    ("version", "path"),
    [
        ("4.16.0", IngestionPath.OTLP),
        ("3.22.0", IngestionPath.OTLP),
        ("v3.63.1", IngestionPath.OTLP),
        ("3.21.9", IngestionPath.LEGACY),
        ("2.95.12", IngestionPath.LEGACY),
        (None, IngestionPath.OTLP),
        ("unknown", IngestionPath.OTLP),
    ],
)
def test_path_for_version_chooses_otlp_from_3_22(version: str | None, path: IngestionPath) -> None:
    """3.22 and newer or unknown -> OTLP; older -> legacy."""
    assert path_for_version(version) is path


def test_parse_version_reads_prerelease_and_prefix() -> None:
    """A 'v' prefix and a pre-release suffix are tolerated; garbage is None."""
    assert parse_version("v3.22.1-rc.1") == (3, 22, 1)
    assert parse_version("4.16") == (4, 16, 0)
    assert parse_version("latest") is None


def test_probe_server_reads_the_health_version(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A v2 health answer selects the legacy path, without a warning."""
    langfuse.answer(HEALTH_PATH, Answer(200, {"status": "OK", "version": "2.95.12"}))
    info = probe_server(langfuse.url, client=client)
    assert (info.version, info.path, info.warning) == ("2.95.12", IngestionPath.LEGACY, None)


def test_probe_server_warns_when_the_version_is_missing(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """Health without a version (a proxy) -> OTLP with a warning."""
    langfuse.answer(HEALTH_PATH, Answer(200, b"OK"))
    info = probe_server(langfuse.url, client=client)
    assert info.path is IngestionPath.OTLP and info.version is None
    assert info.warning and "without a version" in info.warning


def test_probe_server_warns_when_unreachable(client: httpx.Client) -> None:
    """An unreachable health endpoint -> OTLP with a warning, no exception."""
    info = probe_server(f"http://127.0.0.1:{_free_port()}", client=client)
    assert info.path is IngestionPath.OTLP
    assert info.warning and "could not read" in info.warning


def test_check_credentials_returns_the_project(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """200 with data[0] -> project id, name and the server info; Basic auth sent."""
    langfuse.answer(PROJECTS_PATH, Answer(200, PROJECTS))
    langfuse.answer(HEALTH_PATH, Answer(200, {"status": "OK", "version": "4.16.0"}))
    project = check_credentials(langfuse.url + "/", "pk-lf-1", "sk-lf-1", client=client)
    assert (project.project_id, project.project_name) == ("proj-1", "Support bot")
    assert project.server.path is IngestionPath.OTLP and project.server.version == "4.16.0"
    (request,) = langfuse.received(PROJECTS_PATH)
    assert request.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("answer", "code", "words"),
    [
        (Answer(200, {"data": []}), "no_project", "no project"),
        (
            Answer(
                401,
                {
                    "message": "Invalid credentials. Confirm that you've configured the correct host."
                },
            ),
            "unauthorized",
            "region",
        ),
        (
            Answer(403, {"message": "Invalid API key. Are you using an organization key?"}),
            "organization_key",
            "organization keys",
        ),
        (
            Answer(403, {"message": "Ingestion suspended: Usage threshold exceeded."}),
            "usage_suspended",
            "suspended",
        ),
        (Answer(200, b"<html>hello</html>"), "not_langfuse", "Langfuse"),
        (Answer(200, {"projects": []}), "not_langfuse", "Langfuse"),
        (Answer(404, b"not here"), "not_langfuse", "path prefix"),
        (Answer(502, b"bad gateway"), "host_unreachable", "502"),
    ],
)
def test_check_credentials_names_what_to_fix(
    langfuse: ScriptedServer, client: httpx.Client, answer: Answer, code: str, words: str
) -> None:
    """Each refusal raises TracingConfigError with its code and a plain hint."""
    langfuse.answer(PROJECTS_PATH, answer)
    with pytest.raises(TracingConfigError) as caught:
        check_credentials(langfuse.url, "pk", "sk", client=client)
    assert caught.value.code == code
    assert words in caught.value.message


def test_check_credentials_reports_an_unreachable_host(client: httpx.Client) -> None:
    """Nothing listening -> host_unreachable."""
    with pytest.raises(TracingConfigError) as caught:
        check_credentials(f"http://127.0.0.1:{_free_port()}", "pk", "sk", client=client)
    assert caught.value.code == "host_unreachable"


def test_check_credentials_reports_a_timeout_as_unreachable(langfuse: ScriptedServer) -> None:
    """A server that never answers in time -> host_unreachable."""
    langfuse.answer(PROJECTS_PATH, Answer(200, PROJECTS, delay=2.0))
    with httpx.Client(timeout=0.3) as client, pytest.raises(TracingConfigError) as caught:
        check_credentials(langfuse.url, "pk", "sk", client=client)
    assert caught.value.code == "host_unreachable"


def test_check_credentials_reports_an_untrusted_certificate(tls_server: ScriptedServer) -> None:
    """A self-signed certificate the client does not trust -> tls_error."""
    with httpx.Client(timeout=5.0) as client, pytest.raises(TracingConfigError) as caught:
        check_credentials(tls_server.url, "pk", "sk", client=client)
    assert caught.value.code == "tls_error"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(name="tls_server")
def _tls_server(tmp_path: Path) -> Iterator[ScriptedServer]:
    """A scripted server over TLS with a fresh self-signed certificate for 127.0.0.1."""
    cert_file, key_file = self_signed(tmp_path, "opstrail-test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ScriptedServer(tls=context)
    server.answer(PROJECTS_PATH, Answer(200, PROJECTS))
    server.start()
    try:
        yield server
    finally:
        server.stop()

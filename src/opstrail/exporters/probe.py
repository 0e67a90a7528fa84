"""Which path a Langfuse server takes, and whether a key pair works there (contract §1.1, §6).

``probe_server`` reads ``GET /api/public/health`` (no auth): version 3.22 or newer, or no
readable version, means OTLP; older means the legacy batch API. ``check_credentials`` calls
``GET /api/public/projects`` with the keys and raises ``TracingConfigError`` with a code and a
sentence that says what to fix.

Both use the client they are given; give them a ``transport.guarded_client`` so the address
they connect to is checked by netguard (a refusal is ``invalid_host``, or a probe warning).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Final

import httpx

from opstrail.errors import TracingConfigError
from opstrail.exporters.base import Destination, IngestionPath
from opstrail.exporters.http import auth_headers, response_message, unauthorized_message, url
from opstrail.exporters.transport import DestinationRefused

__all__ = [
    "OTLP_MIN_VERSION",
    "ProjectInfo",
    "ServerInfo",
    "check_credentials",
    "parse_version",
    "path_for_version",
    "probe_server",
]

OTLP_MIN_VERSION: Final = (3, 22, 0)
HEALTH_PATH: Final = "/api/public/health"
PROJECTS_PATH: Final = "/api/public/projects"

_VERSION_RE: Final = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ServerInfo:
    """What the health endpoint told: the version (if any), the path to use, and a warning."""

    version: str | None
    path: IngestionPath
    warning: str | None


@dataclass(frozen=True)
class ProjectInfo:
    """The project a key pair belongs to, and the server it lives on."""

    project_id: str
    project_name: str
    server: ServerInfo


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``"4.16.0"``/``"v3.22"``/``"3.22.1-rc.1"`` -> ``(major, minor, patch)``; else ``None``."""
    match = _VERSION_RE.match(text)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def path_for_version(version: str | None) -> IngestionPath:
    """OTLP from 3.22.0 on, and when the version is unknown; legacy below."""
    parsed = parse_version(version) if version else None
    if parsed is not None and parsed < OTLP_MIN_VERSION:
        return IngestionPath.LEGACY
    return IngestionPath.OTLP


def probe_server(host: str, *, client: httpx.Client) -> ServerInfo:
    """Read the server version from ``GET {host}/api/public/health`` and choose the path.

    Never raises for a remote failure: an unreachable health endpoint, or an answer without a
    version (a proxy in front, say), gives OTLP with a warning.
    """
    target = host.rstrip("/") + HEALTH_PATH
    try:
        response = client.get(target)
    except DestinationRefused as exc:
        return ServerInfo(
            None,
            IngestionPath.OTLP,
            f"could not read the Langfuse version from {target} ({exc.reason}); using OTLP, "
            "which needs Langfuse 3.22 or newer",
        )
    except httpx.HTTPError as exc:
        return ServerInfo(
            None,
            IngestionPath.OTLP,
            f"could not read the Langfuse version from {target} ({exc.__class__.__name__}); "
            "using OTLP, which needs Langfuse 3.22 or newer",
        )
    version: str | None = None
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("version"), str):
        version = data["version"]
    if version is None:
        return ServerInfo(
            None,
            IngestionPath.OTLP,
            f"{target} answered HTTP {response.status_code} without a version; using OTLP, "
            "which needs Langfuse 3.22 or newer",
        )
    if parse_version(version) is None:
        return ServerInfo(
            version,
            IngestionPath.OTLP,
            f"the server version {version!r} is not readable; using OTLP",
        )
    return ServerInfo(version, path_for_version(version), None)


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL:" in text or "TLSV1" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def check_credentials(
    host: str, public_key: str, secret_key: str, *, client: httpx.Client
) -> ProjectInfo:
    """Check a key pair against ``GET {host}/api/public/projects`` and probe the server.

    Uses ``client`` as given (its timeout, proxies and TLS settings).

    Returns:
        The project the keys belong to (id and name) and the server info.

    Raises:
        TracingConfigError: with ``code`` ``invalid_host`` (netguard refused the address the
            client was about to connect to), ``host_unreachable``, ``tls_error``,
            ``not_langfuse``, ``unauthorized``, ``organization_key``, ``no_project`` or
            ``usage_suspended``.
    """
    destination = Destination(host=host.rstrip("/"), public_key=public_key, secret_key=secret_key)
    target = url(destination, PROJECTS_PATH)
    try:
        response = client.get(target, headers=auth_headers(destination))
    except DestinationRefused as exc:
        raise TracingConfigError(
            f"{exc.reason} (checked when connecting: the name resolves differently from one "
            "moment to the next; use a host whose addresses are all allowed).",
            code="invalid_host",
        ) from exc
    except httpx.HTTPError as exc:
        if _is_tls_error(exc):
            raise TracingConfigError(
                f"The TLS connection to {host} failed ({exc}). Check that the host uses a "
                "certificate trusted by this server, or that http/https is right.",
                code="tls_error",
            ) from exc
        raise TracingConfigError(
            f"Could not reach {host} ({exc.__class__.__name__}: {exc}). Check the host name, "
            "the port and that this server can reach it (firewall, proxy, DNS).",
            code="host_unreachable",
        ) from exc
    status = response.status_code
    reason = response_message(response)
    if status == 401:
        raise TracingConfigError(unauthorized_message(reason), code="unauthorized")
    if status == 403:
        lowered = reason.lower()
        if "usage threshold" in lowered or "suspended" in lowered:
            raise TracingConfigError(
                "Langfuse has suspended ingestion for this organization (usage threshold "
                f"exceeded). Upgrade the plan or raise the limit in Langfuse. Server said: {reason}",
                code="usage_suspended",
            )
        if "organization" in lowered:
            raise TracingConfigError(
                "These are organization keys. Create a project API key pair in the project's "
                f"settings in Langfuse and use it here. Server said: {reason}",
                code="organization_key",
            )
        raise TracingConfigError(
            f"Langfuse refused these keys (HTTP 403). Use a project's API keys. Server said: {reason}",
            code="unauthorized",
        )
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        raise TracingConfigError(
            f"{host} redirects to {location or 'another address'}; use the final address "
            "(for example https:// instead of http://) as the host.",
            code="not_langfuse",
        )
    if status >= 500:
        raise TracingConfigError(
            f"{host} answered HTTP {status}; the server may be starting or down. Try again "
            "later, or check the host.",
            code="host_unreachable",
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    projects = data.get("data") if isinstance(data, dict) else None
    if status != 200 or not isinstance(projects, list):
        raise TracingConfigError(
            f"{host} does not answer like a Langfuse server (HTTP {status} from "
            f"{PROJECTS_PATH}). Check the host: it is the address of the Langfuse web app, "
            "including any path prefix, without /api.",
            code="not_langfuse",
        )
    if not projects or not isinstance(projects[0], dict) or not projects[0].get("id"):
        raise TracingConfigError(
            "These keys belong to no project. Create the key pair inside a Langfuse project "
            "(project settings, API keys).",
            code="no_project",
        )
    first = projects[0]
    server = probe_server(host, client=client)
    return ProjectInfo(
        project_id=str(first["id"]),
        project_name=str(first.get("name") or ""),
        server=server,
    )

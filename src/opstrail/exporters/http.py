"""HTTP plumbing shared by the exporters: headers, sending, and status -> ``Outcome``.

Every remote failure becomes an ``ExportResult``; nothing here raises for one (contract §3.2,
§4.9; style rule 4: exporters return, the dispatcher decides).

A destination whose address netguard refuses at connect time (``DestinationRefused``: the
name now resolves to a metadata, link-local or, per the settings, private address) becomes a
``RETRY`` without status, like a connection error: the dispatcher shows the destination
``unreachable`` with netguard's reason, backs off, and dead-letters the rows at the age limit
unless the DNS record (or the host) is fixed first. No new outcome: to the delivery policy it is
a destination that cannot be reached, and nothing was sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from opstrail import __version__
from opstrail.exporters.base import Destination, ExportResult, Outcome
from opstrail.exporters.fields import SDK_NAME
from opstrail.exporters.transport import DestinationRefused

DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
MESSAGE_CAP_CHARS: Final = 500

# Most severe first: destination-wide problems, then transient ones, then per-payload ones.
SEVERITY: Final = (
    Outcome.UNAUTHORIZED,
    Outcome.FORBIDDEN,
    Outcome.WRONG_PATH,
    Outcome.RATE_LIMITED,
    Outcome.RETRY,
    Outcome.TOO_LARGE,
    Outcome.REJECTED,
    Outcome.DELIVERED,
)
# Outcomes that say nothing more will get through this destination right now.
STOPS_DESTINATION: Final = frozenset(
    {
        Outcome.UNAUTHORIZED,
        Outcome.FORBIDDEN,
        Outcome.WRONG_PATH,
        Outcome.RATE_LIMITED,
        Outcome.RETRY,
    }
)


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The most severe of ``outcomes`` (``DELIVERED`` for none)."""
    found = set(outcomes)
    for outcome in SEVERITY:
        if outcome in found:
            return outcome
    return Outcome.DELIVERED


def auth_headers(destination: Destination) -> dict[str, str]:
    """Basic auth with the project keys plus opstrail's attribution headers (contract §2)."""
    token = base64.b64encode(f"{destination.public_key}:{destination.secret_key}".encode()).decode(
        "ascii"
    )
    return {
        "Authorization": f"Basic {token}",
        "x-langfuse-sdk-name": SDK_NAME,
        "x-langfuse-sdk-version": __version__,
        "x-langfuse-public-key": destination.public_key,
    }


def url(destination: Destination, path: str) -> str:
    """``{host}{path}``; the host keeps its sub-path and has no trailing slash."""
    return destination.host.rstrip("/") + path


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def response_message(response: httpx.Response) -> str:
    """The server's reason in one line: ``message``/``error`` of a JSON body, else its text."""
    text = response.text
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:MESSAGE_CAP_CHARS]
    if isinstance(data, Mapping):
        parts = [str(data[key]) for key in ("message", "error") if data.get(key)]
        if not parts and data.get("errors"):
            parts.append(json.dumps(data["errors"])[:MESSAGE_CAP_CHARS])
        if parts:
            return ": ".join(parts)[:MESSAGE_CAP_CHARS]
    return text.strip()[:MESSAGE_CAP_CHARS]


def forbidden_message(reason: str) -> str:
    """A plain explanation of a 403: usage suspended, or a key that is not a project key."""
    lowered = reason.lower()
    if "usage threshold" in lowered or "suspended" in lowered:
        return (
            "Langfuse suspended ingestion for this organization (usage threshold exceeded); "
            f"upgrade the plan or raise the limit in Langfuse. Server said: {reason}"
        )
    return (
        "Langfuse refused access: these look like organization keys or keys without access to "
        f"this endpoint; use a project's public and secret key. Server said: {reason}"
    )


def unauthorized_message(reason: str) -> str:
    """A plain explanation of a 401, with the wrong-region hint."""
    return (
        "Langfuse rejected the keys. Check the public and secret key, and that they were created "
        "on this host: keys work only on the server or Cloud region (EU, US, JP, HIPAA) where "
        f"they were made. Server said: {reason}"
    )


def result_for_status(response: httpx.Response, *, not_found_is_wrong_path: bool) -> ExportResult:
    """Map a whole-request answer to an ``ExportResult`` (no 207 parsing here)."""
    status = response.status_code
    reason = response_message(response)
    if 200 <= status < 300:
        return ExportResult(Outcome.DELIVERED, status_code=status)
    if status == 401:
        return ExportResult(Outcome.UNAUTHORIZED, status, unauthorized_message(reason))
    if status == 403:
        return ExportResult(Outcome.FORBIDDEN, status, forbidden_message(reason))
    if status == 413:
        return ExportResult(
            Outcome.TOO_LARGE, status, f"request too large for the server: {reason}"
        )
    if status == 429:
        return ExportResult(
            Outcome.RATE_LIMITED,
            status,
            f"rate limited: {reason}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if status in (404, 405) and not_found_is_wrong_path:
        return ExportResult(
            Outcome.WRONG_PATH,
            status,
            f"the server has no such endpoint (HTTP {status}); it may be older than Langfuse "
            f"3.22 and need the legacy path: {reason}",
        )
    if status == 408 or status >= 500:
        return ExportResult(
            Outcome.RETRY,
            status,
            f"server error HTTP {status}: {reason}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    return ExportResult(Outcome.REJECTED, status, f"HTTP {status}: {reason}")


def send(
    client: httpx.Client,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None = None,
    timeout: httpx.Timeout | float | None = None,
) -> httpx.Response | ExportResult:
    """Send one request; a transport failure comes back as a ``RETRY`` result, never raised.

    A refused address (``DestinationRefused``) is a ``RETRY`` whose message names the address
    and the rule (module docstring).
    """
    try:
        return client.request(
            method,
            target,
            headers=headers,
            content=content,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
        )
    except DestinationRefused as exc:
        return ExportResult(Outcome.RETRY, message=f"not sent to {target}: {exc}")
    except httpx.TimeoutException as exc:
        return ExportResult(Outcome.RETRY, message=f"timed out talking to {target}: {exc!r}")
    except httpx.RequestError as exc:
        return ExportResult(Outcome.RETRY, message=f"could not reach {target}: {exc!r}")
    except httpx.InvalidURL as exc:
        # The host is checked when it is saved; if a bad one gets here, say so and let the
        # dispatcher's age limit end it rather than raise inside the delivery loop.
        return ExportResult(Outcome.RETRY, message=f"invalid destination URL {target!r}: {exc}")

"""The demo's script: import the example apps, configure tracing, run messages and workflow
runs through the HTTP service API, wait for delivery, read every trace back and check it.

Everything goes over real HTTP: the console API to set up, the Dify-compatible service API to
run, and the Langfuse public API (``GET /api/public/traces/{id}``) to read traces back, so the
same script verifies the in-process collector and a real Langfuse alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from opstrail import ids


@dataclass
class ExpectedTrace:
    """A trace the demo expects to arrive, with what it must contain."""

    app: str
    label: str
    trace_id: str
    name: str
    must_have_types: tuple[str, ...] = ()
    must_have_levels: tuple[str, ...] = ()
    min_observations: int = 1
    started_at: float = field(default_factory=time.time)


@dataclass
class DemoApp:
    key: str
    path: Path
    app_id: str = ""
    mode: str = ""
    token: str = ""


class DemoFailure(Exception):
    """A step of the demo failed; the message says which and why."""


class ConsoleClient:
    """The console API with the console token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=f"{base_url}/console/api",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise DemoFailure(f"{method} /console/api{path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def close(self) -> None:
        self.http.close()


class ServiceClient:
    """The Dify-compatible service API of one app."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=f"{base_url}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        if response.status_code >= 400:
            raise DemoFailure(f"POST /v1{path} -> {response.status_code}: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def stream(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """POST with response_mode streaming; return the decoded SSE events."""
        import json

        events: list[dict[str, Any]] = []
        with self.http.stream("POST", path, json={**body, "response_mode": "streaming"}) as response:
            if response.status_code >= 400:
                response.read()
                raise DemoFailure(f"POST /v1{path} (streaming) -> {response.status_code}: {response.text}")
            for line in response.iter_lines():
                if line.startswith("data:"):
                    payload = line[5:].strip()
                    if payload:
                        events.append(json.loads(payload))
        return events

    def close(self) -> None:
        self.http.close()


class LangfuseReader:
    """Reads traces back through Langfuse's public API (the collector serves the same)."""

    def __init__(self, host: str, public_key: str, secret_key: str) -> None:
        self.host = host.rstrip("/")
        self.http = httpx.Client(base_url=self.host, auth=(public_key, secret_key), timeout=30)

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"/api/public/traces/{trace_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def close(self) -> None:
        self.http.close()


def check_trace(expected: ExpectedTrace, trace: dict[str, Any]) -> list[str]:
    """Return the problems of a received trace (empty when it is valid)."""
    problems: list[str] = []
    observations: list[dict[str, Any]] = trace.get("observations") or []
    by_id = {o["id"]: o for o in observations}
    if len(by_id) != len(observations):
        problems.append("duplicate observation ids")
    if len(observations) < expected.min_observations:
        problems.append(f"{len(observations)} observations, expected at least {expected.min_observations}")
    roots = [o for o in observations if not o.get("parentObservationId")]
    if expected.name != "generate_name" and len(roots) != 1:
        problems.append(f"{len(roots)} root observations, expected 1")
    for o in observations:
        parent = o.get("parentObservationId")
        if parent and parent not in by_id:
            problems.append(f"observation {o.get('name')} has a missing parent {parent}")
        if not str(o.get("startTime", "")).endswith(("Z", "+00:00")):
            problems.append(f"observation {o.get('name')} start time has no UTC offset")
    if trace.get("name") != expected.name:
        problems.append(f"trace name {trace.get('name')!r}, expected {expected.name!r}")
    # On the legacy path (Langfuse < 3.22) tool, retriever, guardrail and chain observations
    # travel as spans and agents as generations, with the intended type in metadata.
    types = {str(o.get("type", "")).lower() for o in observations} | {
        str((o.get("metadata") or {}).get("observation_type", "")).lower()
        for o in observations
        if isinstance(o.get("metadata"), dict)
    }
    for wanted in expected.must_have_types:
        if wanted not in types:
            problems.append(f"no {wanted} observation (have {sorted(types)})")
    levels = {str(o.get("level", "")).upper() for o in observations}
    for wanted in expected.must_have_levels:
        if wanted not in levels:
            problems.append(f"no observation with level {wanted}")
    return problems


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def message_trace(app: str, label: str, message_id: str, **kwargs: Any) -> ExpectedTrace:
    return ExpectedTrace(app, label, ids.trace_id(message_id), f"message_{message_id}", **kwargs)


def workflow_trace(app: str, label: str, run_id: str, **kwargs: Any) -> ExpectedTrace:
    return ExpectedTrace(app, label, ids.trace_id(run_id), f"workflow_{run_id}", **kwargs)


def title_trace(app: str, conversation_id: str) -> ExpectedTrace:
    return ExpectedTrace(
        app,
        "conversation title",
        ids.trace_id(ids.seed_conversation_root(conversation_id)),
        "generate_name",
        must_have_types=("generation",),
    )

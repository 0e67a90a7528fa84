"""``create_collector_app(config)``: the Starlette app of the local Langfuse-compatible receiver.

Every route goes through one wrapper that applies injected faults first (as a proxy or an
overloaded server would) and then records the answer in the request log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opstrail.collector.auth import AuthFailure, authenticate
from opstrail.collector.config import CollectorConfig
from opstrail.collector.faults import FaultConfig, FaultInjector, InjectedFault
from opstrail.collector.http import json_response, project_caller, state_of
from opstrail.collector.ingestion_route import receive_batch
from opstrail.collector.otlp_route import receive_traces
from opstrail.collector.read_routes import get_observations, get_trace, list_traces
from opstrail.collector.requests_log import RequestLog, RequestNotes, RequestRecord
from opstrail.collector.scores_route import create_score, delete_score
from opstrail.collector.state import CollectorState
from opstrail.collector.store import CollectorStore
from opstrail.collector.values import utc_now_text
from opstrail.errors import ValidationError

RECENT_EVENTS_SECONDS = 180
Handler = Callable[[Request, RequestNotes], Awaitable[Response]]

_RECORDED_HEADERS = (
    "content-type",
    "content-encoding",
    "x-langfuse-ingestion-version",
    "x-langfuse-sdk-name",
    "x-langfuse-sdk-version",
    "x-langfuse-public-key",
    "user-agent",
)


def _endpoint(name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        state = state_of(request)
        notes = RequestNotes()
        fault = state.faults.decide(name)
        response = await _apply_fault(fault) if fault is not None else None
        if response is None:
            response = await handler(request, notes)
        state.requests.add(
            RequestRecord(
                endpoint=name,
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                received_at=utc_now_text(),
                public_key=notes.public_key,
                headers={h: v for h in _RECORDED_HEADERS if (v := request.headers.get(h))},
                body_bytes=notes.body_bytes,
                items=notes.items,
                injected=fault is not None and fault.status is not None,
            )
        )
        return response

    return wrapped


async def _apply_fault(fault: InjectedFault) -> Response | None:
    if fault.latency_seconds > 0:
        await asyncio.sleep(fault.latency_seconds)
    if fault.status is None:
        return None
    if fault.status == 429:
        retry_after = fault.headers.get("Retry-After", "1")
        body = {
            "message": "Rate limit exceeded",
            "code": "rate_limited",
            "details": {
                "retryAfterSeconds": int(retry_after),
                "limit": 0,
                "remaining": 0,
                "resetAt": None,
            },
        }
        reset = int(datetime.now(UTC).timestamp()) + int(retry_after)
        headers = {
            **fault.headers,
            "X-RateLimit-Limit": "0",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
        return json_response(429, body, headers)
    return json_response(
        fault.status, {"message": fault.message, "injected": True}, dict(fault.headers)
    )


async def _health(request: Request, notes: RequestNotes) -> Response:
    """Health/readiness; ``?failIfNoRecentEvents=true`` answers 503 after 3 quiet minutes."""
    config = state_of(request).config
    body: dict[str, str] = {"status": "OK"}
    if config.report_version:
        body["version"] = config.langfuse_version
    if request.query_params.get("failIfNoRecentEvents") == "true":
        last = state_of(request).store.last_received_at()
        if last is None or _age_seconds(last) > RECENT_EVENTS_SECONDS:
            return json_response(503, {"status": "No recent events", **body})
    return json_response(200, body)


def _age_seconds(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (datetime.now(UTC) - moment).total_seconds()


async def _projects(request: Request, notes: RequestNotes) -> Response:
    state = state_of(request)
    try:
        caller = authenticate(request.headers.get("authorization"), state.config.keys)
    except AuthFailure as failure:
        return json_response(401, {"message": failure.reason})
    if caller.scope != "full":
        return json_response(401, {"message": "Access denied - Basic auth is required"})
    if caller.key.organization_key:
        return json_response(
            403, {"message": "Invalid API key. Are you using an organization key?"}
        )
    if caller.project_id is None:
        return json_response(200, {"data": []})
    notes.public_key = caller.key.public_key
    config = state.config
    return json_response(
        200,
        {
            "data": [
                {
                    "id": caller.project_id,
                    "name": caller.key.display_project,
                    "organization": {
                        "id": config.organization_id,
                        "name": config.organization_name,
                    },
                    "metadata": {},
                }
            ]
        },
    )


async def _faults(request: Request, notes: RequestNotes) -> Response:
    """Admin: GET shows, PUT/POST replaces, DELETE clears the fault configuration."""
    state = state_of(request)
    caller = project_caller(request, style="project")
    if isinstance(caller, Response):
        return caller
    if request.method in ("POST", "PUT"):
        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ValidationError("the fault configuration must be a JSON object")
            state.faults.set(FaultConfig.from_mapping(data))
        except (ValueError, ValidationError) as exc:
            return json_response(400, {"message": str(exc)})
    elif request.method == "DELETE":
        state.faults.set(FaultConfig())
    return json_response(200, state.faults.config.to_dict())


def create_collector_app(
    config: CollectorConfig,
    *,
    store: CollectorStore | None = None,
    faults: FaultInjector | None = None,
    requests: RequestLog | None = None,
) -> Starlette:
    """Build the collector app.

    Args:
        config: keys, imitated version, limits, initial faults, data dir.
        store: where received data goes (default: SQLite in ``config.data_dir`` or memory).
        faults: a shared fault injector (the test harness and the server runner pass theirs).
        requests: a shared request log.

    Returns:
        The Starlette app; ``app.state.collector`` is its ``CollectorState``.
    """
    state = CollectorState(
        config=config,
        store=store or CollectorStore(config.database_path),
        faults=faults or FaultInjector(config.faults),
        requests=requests or RequestLog(),
    )
    routes = [
        Route("/api/public/health", _endpoint("health", _health), methods=["GET"]),
        Route("/api/public/ready", _endpoint("ready", _health), methods=["GET"]),
        Route("/api/public/projects", _endpoint("projects", _projects), methods=["GET"]),
        Route("/api/public/otel/v1/traces", _endpoint("otel", receive_traces), methods=["POST"]),
        Route("/api/public/ingestion", _endpoint("ingestion", receive_batch), methods=["POST"]),
        Route("/api/public/scores", _endpoint("scores", create_score), methods=["POST"]),
        Route(
            "/api/public/scores/{score_id}", _endpoint("scores", delete_score), methods=["DELETE"]
        ),
        Route("/api/public/traces", _endpoint("read", list_traces), methods=["GET"]),
        Route("/api/public/traces/{trace_id}", _endpoint("read", get_trace), methods=["GET"]),
        Route("/api/public/observations", _endpoint("read", get_observations), methods=["GET"]),
        Route(
            "/_collector/faults",
            _endpoint("admin", _faults),
            methods=["GET", "POST", "PUT", "DELETE"],
        ),
    ]
    app = Starlette(routes=routes)
    app.state.collector = state
    return app

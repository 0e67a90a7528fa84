"""``POST /api/public/ingestion``: the legacy batch endpoint, answering 207 per event."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from opstrail.collector.auth import Caller
from opstrail.collector.http import (
    json_response,
    project_caller,
    read_noted_body,
    state_of,
)
from opstrail.collector.legacy import (
    EVENTS_ONLY_ACCEPTED,
    EventInvalid,
    accepted_types,
    body_check,
    check_envelope,
    observation_record,
)
from opstrail.collector.requests_log import RequestNotes
from opstrail.collector.state import CollectorState
from opstrail.collector.store import ObservationCopy, TraceCopy, fingerprint
from opstrail.collector.values import utc_now_text


def _invalid(event_id: str, text: str) -> dict[str, Any]:
    return {"id": event_id, "status": 400, "message": "Invalid request data", "error": text}


async def receive_batch(request: Request, notes: RequestNotes) -> Response:
    """Validate each event, store the accepted ones, answer 207 with successes and errors."""
    state = state_of(request)
    caller = project_caller(request, style="ingestion", allow_scores_scope=True)
    if isinstance(caller, Response):
        return caller
    notes.public_key = caller.key.public_key
    raw = await read_noted_body(request, state.config.legacy_max_bytes, notes)
    if isinstance(raw, Response):
        return raw
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return json_response(400, {"message": "Invalid request data", "errors": [str(exc)]})
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        return json_response(
            400, {"message": "Invalid request data", "errors": ["batch: expected an array"]}
        )
    batch: list[Any] = payload["batch"]
    notes.items = len(batch)
    if state.faults.accept_only:
        ids = [e.get("id") if isinstance(e, dict) else "unknown" for e in batch]
        return json_response(
            207, {"successes": [{"id": i, "status": 201} for i in ids], "errors": []}
        )
    return json_response(207, _process(state, caller, batch))


def _process(state: CollectorState, caller: Caller, batch: list[Any]) -> dict[str, Any]:
    mode = state.config.write_mode
    known = accepted_types(mode)
    project_id = caller.project_id
    assert project_id is not None  # project_caller refused project-less keys
    received_at = utc_now_text()
    successes: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    observations: list[ObservationCopy] = []
    traces: list[TraceCopy] = []
    scores: list[dict[str, Any]] = []
    for event in batch:
        event_id = event.get("id") if isinstance(event, dict) else None
        event_id = event_id if isinstance(event_id, str) and event_id else "unknown"
        event_type = event.get("type") if isinstance(event, dict) else None
        if mode == "events_only" and event_type not in EVENTS_ONLY_ACCEPTED:
            errors.append(
                {
                    "id": event_id,
                    "status": 400,
                    "message": "Event type not accepted",
                    "error": f"Event type {event_type!r} is not accepted in events_only write mode",
                }
            )
            continue
        try:
            event_id, event_type, timestamp, raw_body = check_envelope(event)
            if event_type not in known:
                raise EventInvalid(f"type: unknown or unsupported event type {event_type!r}")
            if event_type == "sdk-log":
                continue  # logged by Langfuse, then discarded; echoed nowhere
            body = body_check(event_type)(raw_body, mode)
        except EventInvalid as exc:
            errors.append(_invalid(event_id, str(exc)))
            continue
        if caller.scope != "full" and event_type != "score-create":
            errors.append(
                {
                    "id": event_id,
                    "status": 401,
                    "message": "Authentication error",
                    "error": "Access Scope Denied",
                }
            )
            continue
        if state.faults.event_fails():
            errors.append(
                {
                    "id": event_id,
                    "status": 500,
                    "error": "Internal Server Error",
                    "message": "Injected fault",
                }
            )
            continue
        successes.append({"id": event_id, "status": 201})
        if "id" not in body:
            # Langfuse answers 201 and never stores an event without body.id (a known trap).
            continue
        if event_type == "trace-create":
            body.setdefault("timestamp", timestamp)
            body.setdefault("environment", "default")
            body["isRoot"] = True
            traces.append(TraceCopy(project_id, body["id"], "legacy", received_at, body))
        elif event_type == "score-create":
            body.setdefault("timestamp", timestamp)
            scores.append(body)
        else:
            data = observation_record(event_type, body, timestamp)
            observations.append(
                ObservationCopy(
                    project_id=project_id,
                    id=body["id"],
                    trace_id=body.get("traceId"),
                    source="legacy",
                    is_copy=event_type.endswith("-create"),
                    received_at=received_at,
                    data=data,
                    fingerprint=fingerprint(data),
                )
            )
    # Langfuse applies a batch's creates before its updates, whatever their order.
    observations.sort(key=lambda o: not o.is_copy)
    state.store.add(observations=observations, traces=traces)
    for score in scores:
        state.store.upsert_score(project_id, score, received_at)
    return {"successes": successes, "errors": errors}

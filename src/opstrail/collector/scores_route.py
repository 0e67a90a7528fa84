"""``POST /api/public/scores`` and ``DELETE /api/public/scores/{id}``."""

from __future__ import annotations

import json
import uuid

from starlette.requests import Request
from starlette.responses import Response

from opstrail.collector.http import (
    json_response,
    project_caller,
    read_noted_body,
    state_of,
)
from opstrail.collector.legacy import EventInvalid, score_body
from opstrail.collector.requests_log import RequestNotes
from opstrail.collector.values import utc_now_text


async def create_score(request: Request, notes: RequestNotes) -> Response:
    """Create or replace a score by id; answers ``{"id": ...}``."""
    state = state_of(request)
    caller = project_caller(request, style="project", allow_scores_scope=True)
    if isinstance(caller, Response):
        return caller
    notes.public_key = caller.key.public_key
    raw = await read_noted_body(request, state.config.scores_max_bytes, notes)
    if isinstance(raw, Response):
        return raw
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return json_response(400, {"message": "Invalid request data", "error": str(exc)})
    if not isinstance(payload, dict):
        return json_response(
            400, {"message": "Invalid request data", "error": "body must be an object"}
        )
    try:
        score = score_body(payload, state.config.write_mode)
    except EventInvalid as exc:
        return json_response(400, {"message": "Invalid request data", "error": str(exc)})
    notes.items = 1
    if state.faults.accept_only:
        return json_response(200, {"id": score.get("id") or str(uuid.uuid4())})
    received_at = utc_now_text()
    score.setdefault("id", str(uuid.uuid4()))
    score.setdefault("timestamp", received_at)
    score.setdefault("environment", "default")
    assert caller.project_id is not None  # project_caller refused project-less keys
    state.store.upsert_score(caller.project_id, score, received_at)
    return json_response(200, {"id": score["id"]})


async def delete_score(request: Request, notes: RequestNotes) -> Response:
    """Delete a score; 204, or 404 when the project has no such score."""
    state = state_of(request)
    caller = project_caller(request, style="project")
    if isinstance(caller, Response):
        return caller
    notes.public_key = caller.key.public_key
    assert caller.project_id is not None
    if not state.store.delete_score(caller.project_id, request.path_params["score_id"]):
        return json_response(404, {"message": "Score not found"})
    return Response(status_code=204)

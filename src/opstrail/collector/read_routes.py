"""Langfuse-like read API (``/api/public/traces``, ``/api/public/observations``).

Answers only what the caller's project received. Observations carry two collector extras:
``copies`` and ``identicalCopies``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from opstrail.collector.http import json_response, project_caller, state_of
from opstrail.collector.reading import CollectorReader, public_trace
from opstrail.collector.requests_log import RequestNotes


def _page(request: Request) -> tuple[int, int] | Response:
    try:
        page = int(request.query_params.get("page", "1"))
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        return json_response(400, {"message": "page and limit must be integers"})
    if page < 1 or not 1 <= limit <= 1000:
        return json_response(400, {"message": "page must be >= 1 and limit 1..1000"})
    return page, limit


def _paginate(items: list[Any], page: int, limit: int) -> dict[str, Any]:
    total = len(items)
    start = (page - 1) * limit
    return {
        "data": items[start : start + limit],
        "meta": {
            "page": page,
            "limit": limit,
            "totalItems": total,
            "totalPages": (total + limit - 1) // limit,
        },
    }


async def list_traces(request: Request, notes: RequestNotes) -> Response:
    """GET /api/public/traces with page, limit, userId, sessionId, name, tags filters."""
    caller = project_caller(request)
    if isinstance(caller, Response):
        return caller
    paging = _page(request)
    if isinstance(paging, Response):
        return paging
    reader = CollectorReader(state_of(request).store)
    traces = reader.traces(project_id=caller.project_id)
    params = request.query_params
    for field, key in (("userId", "userId"), ("sessionId", "sessionId"), ("name", "name")):
        wanted = params.get(key)
        if wanted is not None:
            traces = [t for t in traces if t.get(field) == wanted]
    for tag in params.getlist("tags"):
        traces = [t for t in traces if tag in t["tags"]]
    traces.sort(key=lambda t: t["timestamp"] or "", reverse=True)
    return json_response(200, _paginate([public_trace(t) for t in traces], *paging))


async def get_trace(request: Request, notes: RequestNotes) -> Response:
    """GET /api/public/traces/{trace_id}: the trace with its observations and scores."""
    caller = project_caller(request)
    if isinstance(caller, Response):
        return caller
    state = state_of(request)
    trace_id = request.path_params["trace_id"]
    trace = CollectorReader(state.store).trace(trace_id, project_id=caller.project_id)
    if trace is None:
        return json_response(
            404, {"message": f"Trace {trace_id} not found within authorized project"}
        )
    trace["scores"] = [
        s for s in state.store.scores(project_id=caller.project_id) if s.get("traceId") == trace_id
    ]
    return json_response(200, trace)


async def get_observations(request: Request, notes: RequestNotes) -> Response:
    """GET /api/public/observations with traceId, type, name, page, limit filters."""
    caller = project_caller(request)
    if isinstance(caller, Response):
        return caller
    paging = _page(request)
    if isinstance(paging, Response):
        return paging
    params = request.query_params
    observations = CollectorReader(state_of(request).store).observations(
        project_id=caller.project_id, trace_id=params.get("traceId")
    )
    for field in ("type", "name", "parentObservationId"):
        wanted = params.get(field)
        if wanted is not None:
            observations = [o for o in observations if o.get(field) == wanted]
    return json_response(200, _paginate(observations, *paging))

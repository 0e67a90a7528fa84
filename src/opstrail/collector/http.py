"""Request helpers shared by the collector's routes: bounded body reads, auth answers."""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opstrail.collector.auth import AuthFailure, Caller, authenticate
from opstrail.collector.requests_log import RequestNotes
from opstrail.collector.state import CollectorState

ORG_KEY_MESSAGE = "Project ID not found for API token. Are you using an organization key?"


class BodyTooLarge(Exception):
    """The request body is above the route's limit."""


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return JSONResponse(body, status_code=status, headers=headers)


def state_of(request: Request) -> CollectorState:
    """The collector state of the app serving ``request``."""
    state: CollectorState = request.app.state.collector
    return state


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing early once it passes ``limit`` bytes.

    Raises:
        BodyTooLarge: the declared or actual size is above the limit.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> Response:
    """413 in the words of Next.js's body parser."""
    megabytes = limit / (1024 * 1024)
    return json_response(413, {"message": f"Body exceeded {megabytes:g}mb limit"})


async def read_noted_body(request: Request, limit: int, notes: RequestNotes) -> bytes | Response:
    """Read the body within ``limit`` and note its size, or answer 413 when it is larger."""
    try:
        raw = await read_body(request, limit)
    except BodyTooLarge:
        return too_large(limit)
    notes.body_bytes = len(raw)
    return raw


def project_caller(
    request: Request,
    *,
    style: Literal["otel", "project", "ingestion"] = "project",
    allow_scores_scope: bool = False,
) -> Caller | Response:
    """Authenticate a project route; answer 401/403 the way that Langfuse route does.

    ``style`` picks the refusal body: ``ingestion`` answers org keys with 401 (as the legacy
    route does) and adds ``"error": "UnauthorizedError"``; the others answer org keys with 403.
    """
    state = state_of(request)
    try:
        caller = authenticate(request.headers.get("authorization"), state.config.keys)
    except AuthFailure as failure:
        body: dict[str, str] = {"message": failure.reason}
        if style == "ingestion":
            body = {"error": "UnauthorizedError", "message": failure.reason}
        return json_response(401, body)
    if caller.scope != "full" and not allow_scores_scope:
        return json_response(
            401, {"message": "Access denied - Basic auth with a secret key is required"}
        )
    if caller.project_id is None:
        if style == "ingestion":
            return json_response(
                401,
                {
                    "error": "UnauthorizedError",
                    "message": "Missing projectId in scope. Are you using an organization key?",
                },
            )
        return json_response(403, {"message": ORG_KEY_MESSAGE})
    return caller

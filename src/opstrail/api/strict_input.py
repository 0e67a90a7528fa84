"""Refuse, at the door, input that no store can keep: NUL characters and non-finite numbers.

PostgreSQL cannot store ``\\x00`` in text or JSON, nor ``NaN``/``Infinity`` in JSON; SQLite
keeps both silently. Without this guard the same request was stored on one database and
answered 500 on the other. Python's ``json`` module also accepts ``NaN``, ``Infinity`` and
``1e999`` (which RFC 8259 does not), so such bodies reached the runs.

``StrictInputMiddleware`` checks the decoded path, the decoded query string and every JSON
request body (strings and keys, at any depth) and answers 400 ``invalid_param`` with the
place of the first offending value; it also refuses a JSON body over ``MAX_JSON_BODY_BYTES``
with 413. Bodies that are not JSON, or JSON that does not parse, are passed on unchanged: the
route's own validation answers them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The largest JSON body read: above every field cap (a dataset document is 20 MB, an import
# 10 MB) with room for several documents, and far below what would exhaust memory.
MAX_JSON_BODY_BYTES: Final = 64 * 1024 * 1024
NUL: Final = "\x00"


class _NonFinite(ValueError):
    """A JSON number that is NaN or infinite."""


def _reject_constant(name: str) -> float:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _nul_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where NUL characters are in a parsed JSON value (keys and strings)."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield (*path, key.replace(NUL, "\\u0000"))
            yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, index))


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status)


def json_body_problem(body: bytes) -> str | None:
    """Why a JSON body must be refused (``None``: pass it on).

    Args:
        body: the raw request body of a JSON request.

    Returns:
        A message naming the first offending place, or ``None`` when the body is acceptable
        or does not parse at all (the route reports that itself).
    """
    try:
        parsed = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        return f"numbers must be finite JSON numbers; got {exc}"
    except (ValueError, RecursionError):
        return None
    for path in _nul_paths(parsed):
        return f"{_where(path)}: text must not contain NUL (\\u0000) characters"
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class StrictInputMiddleware:
    """ASGI middleware that refuses NUL characters and non-finite JSON numbers (400), and
    JSON bodies over ``max_json_bytes`` (413)."""

    def __init__(self, app: ASGIApp, max_json_bytes: int = MAX_JSON_BODY_BYTES) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if NUL in scope.get("path", ""):
            await _refusal(400, "invalid_param",
                           "the path must not contain NUL (%00) characters")(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if NUL in name or NUL in value:
                where = name.replace(NUL, "%00")
                await _refusal(400, "invalid_param",
                               f"{where}: query parameters must not contain NUL (%00) "
                               "characters")(scope, receive, send)
                return
        if not _is_json(scope) or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_json_bytes:
            await self._too_large()(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_json_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = json_body_problem(body)
        if problem is not None:
            await _refusal(400, "invalid_param", problem)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> JSONResponse:
        return _refusal(413, "payload_too_large",
                        f"the JSON body is larger than {self.max_json_bytes} bytes")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

"""The one place where ``OpstrailError`` becomes an HTTP answer ``{"code", "message"}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opstrail import errors

_STATUS: dict[type[errors.OpstrailError], int] = {
    errors.AuthError: 401,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.TracingConfigError: 422,
    errors.DslError: 400,
    errors.ValidationError: 400,
    errors.InvalidIdError: 400,
    errors.NaiveDatetimeError: 400,
    errors.RuntimeFailure: 500,
    errors.ConfigError: 500,
    errors.DeliveryError: 503,
}


def status_of(exc: errors.OpstrailError) -> int:
    """The HTTP status of an opstrail error: the entry of its nearest class."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]  # type: ignore[index]
    return 500


def install_error_handlers(app: FastAPI) -> None:
    """Map opstrail errors and request-validation errors to JSON answers."""

    @app.exception_handler(errors.OpstrailError)
    async def _opstrail_error(_request: Request, exc: errors.OpstrailError) -> JSONResponse:
        status = getattr(exc, "status_code", None) or status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(
            {"code": exc.code, "message": exc.message, "status": status},
            status_code=status,
            headers=headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (404 route, 405 method, unparsable body) answer in the
        # same {"code", "message"} shape as ours.
        codes = {400: "invalid_param", 401: "unauthorized", 404: "not_found",
                 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(
            {"code": code, "message": str(exc.detail), "status": exc.status_code},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the caller's fault: still a JSON answer in our shape, never the bare
        # text/plain page; Starlette re-raises the exception afterwards, so it is logged.
        return JSONResponse(
            {"code": "internal_error", "message": f"internal error: {type(exc).__name__}",
             "status": 500},
            status_code=500,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(
            first.get("msg", "invalid request")
        )
        return JSONResponse(
            {"code": "invalid_param", "message": message, "status": 400}, status_code=400
        )

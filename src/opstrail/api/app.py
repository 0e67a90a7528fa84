"""``create_app(settings)``: builds the FastAPI application and everything it owns.

Routers are discovered: every module of ``opstrail.api.console`` and ``opstrail.api.service``
that defines ``router`` is included, and ``opstrail.web.routes`` when present. What the app
owns (engine, session factory, dispatcher, HTTP clients) lives on ``app.state`` and is built
in the lifespan, never at import.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import APIRouter, FastAPI

from opstrail import __version__
from opstrail.api import console, service
from opstrail.api.errors import install_error_handlers
from opstrail.api.strict_input import StrictInputMiddleware
from opstrail.settings import Settings

# Hooks run at startup and shutdown, registered by modules that own a resource (the
# dispatcher, for example): name -> (start(app), stop(app)).
LifecycleHook = tuple[Callable[[FastAPI], Any], Callable[[FastAPI], Any]]


def _routers(package: ModuleType) -> list[APIRouter]:
    found: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def create_app(settings: Settings | None = None, *, hooks: list[LifecycleHook] | None = None) -> FastAPI:
    """Build the opstrail HTTP application for ``settings``."""
    settings = settings or Settings()
    lifecycle = list(hooks or [])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from opstrail.services.bootstrap import start_services, stop_services

        start_services(app, settings)
        for start, _stop in lifecycle:
            start(app)
        try:
            yield
        finally:
            for _start, stop in reversed(lifecycle):
                stop(app)
            stop_services(app)

    app = FastAPI(
        title="opstrail",
        version=__version__,
        description="Runs LLM apps and traces every run into Langfuse.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(StrictInputMiddleware)
    for router in _routers(console):
        app.include_router(router, prefix="/console/api")
    for router in _routers(service):
        app.include_router(router, prefix="/v1")
    try:
        web_routes = importlib.import_module("opstrail.web.routes")
    except ModuleNotFoundError:
        web_routes = None
    if web_routes is not None and isinstance(getattr(web_routes, "router", None), APIRouter):
        app.include_router(web_routes.router)
    from opstrail.api import metrics, ops

    app.include_router(ops.router)
    app.include_router(metrics.router)
    return app

"""Dify-compatible message endpoints: ``POST /v1/chat-messages``, ``/v1/completion-messages``
and ``POST /v1/chat-messages/{task_id}/stop``.

Advanced-chat apps are handed to ``services.chatflow.handle_chat_message``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from opstrail.api.app_auth import AppTokenDep
from opstrail.api.deps import SettingsDep
from opstrail.api.sse import sse_response
from opstrail.errors import ValidationError
from opstrail.runtime.models.registry import ModelRegistry
from opstrail.services import chatflow
from opstrail.services.apps import SpecCache
from opstrail.services.chat import (
    MessageBody,
    MessageRun,
    TaskRegistry,
    app_parameters,
    model_registry_from_env,
    run_chat_message,
    run_completion_message,
    stop_task,
)
from opstrail.settings import Settings
from opstrail.storage.tables.apps import App
from opstrail.tracing.info import FromSource

T = TypeVar("T")

router = APIRouter(tags=["service: messages"])
log = logging.getLogger(__name__)
# Guards the lazy creation of per-server objects on app.state (not itself state).
_STATE_LOCK: Final = threading.Lock()


def _kept_on_state(request: Request, name: str, build: Callable[[], T]) -> T:
    # Built on first use under the lock, so two first requests cannot each build one.
    with _STATE_LOCK:
        value: T | None = getattr(request.app.state, name, None)
        if value is None:
            value = build()
            setattr(request.app.state, name, value)
        return value


def models_of(request: Request) -> ModelRegistry:
    """The server's model registry (built on first use, kept on ``app.state``)."""
    return _kept_on_state(
        request, "model_registry", lambda: model_registry_from_env(request.app.state.settings)
    )


def specs_of(request: Request) -> SpecCache:
    """The server's cache of parsed app specs, kept on ``app.state``."""
    return _kept_on_state(request, "app_specs", SpecCache)


def tasks_of(request: Request) -> TaskRegistry:
    """The server's running-task registry (for stop), kept on ``app.state``."""
    return _kept_on_state(request, "chat_tasks", TaskRegistry)


def _answer(run: MessageRun, body: MessageBody) -> Response:
    if body.files:
        log.warning("files ignored: app %s got %d file(s)", run.app.id, len(body.files))
    if body.response_mode == "streaming":
        return sse_response(run.events())
    return JSONResponse(run.blocking())


def _run_message(
    request: Request,
    settings: Settings,
    app: App,
    body: MessageBody,
    x_trace_id: str | None,
    *,
    chat: bool,
) -> Response:
    # One path for chat and completion messages; only the service entry point differs.
    runner = run_chat_message if chat else run_completion_message
    run = runner(
        request.app.state.session_factory,
        settings,
        app=app,
        request=body,
        source=FromSource.API,
        user=body.user,
        external_trace_id=x_trace_id,
        models=models_of(request),
        tasks=tasks_of(request),
        specs=specs_of(request),
    )
    return _answer(run, body)


@router.post("/chat-messages", summary="Send a chat message")
def chat_messages(
    request: Request,
    app: AppTokenDep,
    settings: SettingsDep,
    body: MessageBody,
    x_trace_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Run a chat, agent-chat or chatflow message (blocking JSON or streaming SSE)."""
    if app.mode == "advanced-chat":
        # Imported here: the workflows router imports this module for models_of/tasks_of.
        from opstrail.api.service.workflows import resources_of

        result = chatflow.handle_chat_message(
            session_factory=request.app.state.session_factory,
            settings=settings,
            app=app,
            body=body,
            source=FromSource.API,
            external_trace_id=x_trace_id,
            tasks=tasks_of(request),
            resources=resources_of(request),
        )
        if isinstance(result, dict):
            return JSONResponse(result)
        return sse_response(result)
    return _run_message(request, settings, app, body, x_trace_id, chat=True)


@router.post("/completion-messages", summary="Send a completion message")
def completion_messages(
    request: Request,
    app: AppTokenDep,
    settings: SettingsDep,
    body: MessageBody,
    x_trace_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Run a completion (text generator) message."""
    return _run_message(request, settings, app, body, x_trace_id, chat=False)


class StopBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user: str = Field(min_length=1, max_length=255)


@router.post("/chat-messages/{task_id}/stop", summary="Stop a streaming message")
@router.post("/completion-messages/{task_id}/stop", summary="Stop a streaming completion")
def stop(request: Request, app: AppTokenDep, task_id: str, body: StopBody) -> dict[str, str]:
    """Ask a running task to stop; answers success as Dify does (also for finished tasks)."""
    if len(task_id) > 64:
        raise ValidationError("task_id is too long", code="invalid_param")
    stop_task(tasks_of(request), request.app.state.session_factory, app=app, task_id=task_id,
              user=body.user)
    return {"result": "success"}


@router.get("/parameters", summary="App parameters: opening statement and input form")
def parameters(request: Request, app: AppTokenDep) -> dict[str, Any]:
    """What a client needs before the first message (Dify's shape)."""
    return app_parameters(app, specs_of(request))

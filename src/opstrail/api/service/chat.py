"""Dify-compatible message endpoints: ``POST /v1/chat-messages``, ``/v1/completion-messages``
and ``POST /v1/chat-messages/{task_id}/stop``.

Advanced-chat apps are handed to ``services.chatflow.handle_chat_message``.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Final

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
from opstrail.tracing.info import FromSource

router = APIRouter(tags=["service: messages"])
log = logging.getLogger(__name__)
# Guards the lazy creation of per-server objects on app.state (not itself state).
_STATE_LOCK: Final = threading.Lock()


def models_of(request: Request) -> ModelRegistry:
    """The server's model registry (built on first use, kept on ``app.state``)."""
    with _STATE_LOCK:
        registry = getattr(request.app.state, "model_registry", None)
        if registry is None:
            registry = model_registry_from_env(request.app.state.settings)
            request.app.state.model_registry = registry
        return registry


def specs_of(request: Request) -> SpecCache:
    """The server's cache of parsed app specs, kept on ``app.state``."""
    with _STATE_LOCK:
        specs = getattr(request.app.state, "app_specs", None)
        if specs is None:
            specs = SpecCache()
            request.app.state.app_specs = specs
        return specs


def tasks_of(request: Request) -> TaskRegistry:
    """The server's running-task registry (for stop), kept on ``app.state``."""
    with _STATE_LOCK:
        tasks = getattr(request.app.state, "chat_tasks", None)
        if tasks is None:
            tasks = TaskRegistry()
            request.app.state.chat_tasks = tasks
        return tasks


def _answer(run: MessageRun, body: MessageBody) -> Response:
    if body.files:
        log.warning("files ignored: app %s got %d file(s)", run.app.id, len(body.files))
    if body.response_mode == "streaming":
        return sse_response(run.events())
    return JSONResponse(run.blocking())


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
    run = run_chat_message(
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


@router.post("/completion-messages", summary="Send a completion message")
def completion_messages(
    request: Request,
    app: AppTokenDep,
    settings: SettingsDep,
    body: MessageBody,
    x_trace_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Run a completion (text generator) message."""
    run = run_completion_message(
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

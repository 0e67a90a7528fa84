"""Dify-compatible workflow endpoints: ``POST /v1/workflows/run``,
``GET /v1/workflows/run/{workflow_run_id}``, ``POST /v1/workflows/tasks/{task_id}/stop``."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from opstrail.api.app_auth import AppTokenDep
from opstrail.api.deps import SessionDep, SettingsDep
from opstrail.api.service.chat import models_of, tasks_of
from opstrail.api.sse import sse_response
from opstrail.errors import ValidationError
from opstrail.services import workflows
from opstrail.services.chat import check_external_trace_id, stop_task
from opstrail.tracing.info import FromSource

router = APIRouter(tags=["service: workflows"])
_STATE_LOCK = threading.Lock()


class WorkflowRunBody(BaseModel):
    """Body of ``POST /v1/workflows/run`` (Dify's fields)."""

    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(default_factory=dict)
    response_mode: Literal["blocking", "streaming"] = "streaming"
    user: str = Field(default="", max_length=255)
    files: list[Any] = Field(default_factory=list)
    trace_id: str | None = None


class StopBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user: str = Field(min_length=1, max_length=255)


def resources_of(request: Request) -> workflows.WorkflowResources:
    """The server's workflow resources (built on first use, kept on ``app.state``): the
    shared model registry, built-in tools, and the code sandbox probed once."""
    with _STATE_LOCK:
        resources = getattr(request.app.state, "workflow_resources", None)
    if resources is None:
        resources = workflows.build_resources(request.app.state.settings,
                                              models=models_of(request))
        with _STATE_LOCK:
            request.app.state.workflow_resources = resources
    return resources


@router.post("/workflows/run", summary="Run a workflow")
def run_workflow(
    request: Request,
    app: AppTokenDep,
    settings: SettingsDep,
    body: WorkflowRunBody,
    x_trace_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Run the app's workflow: blocking JSON or streaming SSE (Dify's events)."""
    if not body.user.strip():
        raise ValidationError("user is required", code="invalid_param")
    external = check_external_trace_id(x_trace_id or body.trace_id)
    result = workflows.run_workflow(
        request.app.state.session_factory,
        settings,
        app=app,
        inputs=body.inputs,
        user=body.user,
        source=FromSource.API,
        response_mode=body.response_mode,
        external_trace_id=external,
        files=body.files,
        resources=resources_of(request),
        tasks=tasks_of(request),
    )
    if isinstance(result, dict):
        return JSONResponse(result)
    return sse_response(result)


@router.get("/workflows/run/{workflow_run_id}", summary="Get a workflow run")
def get_workflow_run(app: AppTokenDep, session: SessionDep,
                     workflow_run_id: str) -> dict[str, Any]:
    """A run of this app: status, outputs, error, totals, times."""
    if len(workflow_run_id) > 64:
        raise ValidationError("workflow_run_id is too long", code="invalid_param")
    return workflows.get_run(session, app=app, workflow_run_id=workflow_run_id)


@router.post("/workflows/tasks/{task_id}/stop", summary="Stop a running workflow")
def stop_workflow(request: Request, app: AppTokenDep, task_id: str,
                  body: StopBody) -> dict[str, str]:
    """Ask a running task to stop (its run ends ``stopped``); answers success as Dify does."""
    if len(task_id) > 64:
        raise ValidationError("task_id is too long", code="invalid_param")
    stop_task(tasks_of(request), request.app.state.session_factory, app=app, task_id=task_id,
              user=body.user)
    return {"result": "success"}

"""Console endpoints behind the "Debug and preview" panel.

Console runs go through the same services as the service API (``/v1``), as the console
account: ``from_source`` console, ``from_account_id`` set, no end user, the console
environment (``settings.environment_console``), and ``triggered_from`` debugging for
workflows. This module only shapes requests and answers; the run services decide everything
else.

Endpoints (under ``/console/api/apps/{app_id}``):

- ``GET  /preview/parameters``: opening statement, suggested questions and input form.
- ``POST /workflows/draft/run``, ``POST /advanced-chat/workflows/draft/run`` (chat and
  completion turns: ``POST /chat-messages``, ``/completion-messages`` in ``apps.py``).
- ``GET  /chat-messages/{message_id}/suggested-questions``, ``POST /feedbacks``.
- ``GET  /recent-traces``: the app's latest traces for the Monitoring page.
- ``GET  /messages/{message_id}/delivery``, ``GET /workflow-runs/{workflow_run_id}/delivery``:
  the delivery state of a run's trace and, once delivered, its link in Langfuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from opstrail import ids
from opstrail.api.console_auth import ConsoleAccount, ConsoleAccountDep
from opstrail.api.deps import SessionDep, SettingsDep
from opstrail.api.service.chat import tasks_of
from opstrail.api.service.workflows import resources_of
from opstrail.api.sse import sse_response
from opstrail.errors import NotFoundError, ValidationError
from opstrail.runtime.dsl.parse import parse_document
from opstrail.services import chat as chat_service
from opstrail.services import chatflow as chatflow_service
from opstrail.services import feedback as feedback_service
from opstrail.services import workflows as workflow_service
from opstrail.services.delivery_status import trace_delivery
from opstrail.services.tracing_settings import tracing_status
from opstrail.storage.repos import chat as chat_repo
from opstrail.storage.tables.apps import App
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.tracing.info import FromSource

router = APIRouter(prefix="/apps/{app_id}", tags=["console preview"])

# Start-node variable types and the user_input_form key each is shown as.
_FORM_KINDS: Mapping[str, str] = {
    "text-input": "text-input",
    "paragraph": "paragraph",
    "select": "select",
    "number": "number",
}


class PreviewParameters(BaseModel):
    """What the preview panel needs to draw its form or chat box."""

    mode: str
    opening_statement: str = ""
    suggested_questions: list[str] = Field(default_factory=list)
    user_input_form: list[dict[str, dict[str, Any]]] = Field(default_factory=list)
    suggested_questions_after_answer: bool = False


class DeliveryState(BaseModel):
    """The delivery state of one run's trace."""

    trace_id: str
    state: Literal["pending", "delivered", "failed", "not_recorded"]
    reason: str | None = None
    trace_url: str | None = None


def _console_app(session: Session, account: ConsoleAccount, app_id: str) -> App:
    app = session.get(App, app_id)
    if app is None or app.tenant_id != account.tenant_id:
        raise NotFoundError(f"App {app_id} does not exist.", code="app_not_found")
    return app


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if isinstance(item, str) and item.strip()]


def _after_answer(features: Mapping[str, Any]) -> bool:
    after = features.get("suggested_questions_after_answer")
    return bool(isinstance(after, Mapping) and after.get("enabled"))


def _start_form(graph: Mapping[str, Any]) -> list[dict[str, dict[str, Any]]]:
    nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    for node in nodes if isinstance(nodes, list) else []:
        data = node.get("data") if isinstance(node, Mapping) else None
        if isinstance(data, Mapping) and data.get("type") == "start":
            return _form_from_variables(data.get("variables") or [])
    return []


def _form_from_variables(variables: Iterable[Any]) -> list[dict[str, dict[str, Any]]]:
    form: list[dict[str, dict[str, Any]]] = []
    for variable in variables:
        if not isinstance(variable, Mapping) or not variable.get("variable"):
            continue
        # Files and other kinds the panel cannot take are left out; the run reports them.
        kind = _FORM_KINDS.get(str(variable.get("type", "text-input")))
        if kind is None:
            continue
        form.append(
            {
                kind: {
                    "variable": str(variable["variable"]),
                    "label": str(variable.get("label") or variable["variable"]),
                    "required": bool(variable.get("required", False)),
                    "options": _string_list(variable.get("options")),
                    "max_length": variable.get("max_length"),
                    "default": variable.get("default"),
                }
            }
        )
    return form


def _user_input_form(entries: object) -> list[dict[str, dict[str, Any]]]:
    """Dify's ``user_input_form`` (``[{"select": {...}}]``) as a plain variable list."""
    variables: list[dict[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and len(entry) == 1:
            ((kind, spec),) = entry.items()
            if isinstance(spec, Mapping):
                variables.append({**spec, "type": kind})
    return _form_from_variables(variables)


def preview_parameters(app: App) -> PreviewParameters:
    """The panel's parameters, read from the app's DSL document as imported."""
    document = parse_document(app.dsl)
    if document.workflow is not None:
        features = document.workflow.get("features") or {}
        form = _start_form(document.workflow.get("graph") or {})
    else:
        features = document.model_config or {}
        form = _user_input_form(features.get("user_input_form"))
    features = features if isinstance(features, Mapping) else {}
    opening = features.get("opening_statement")
    return PreviewParameters(
        mode=app.mode,
        opening_statement=opening if isinstance(opening, str) else "",
        suggested_questions=_string_list(features.get("suggested_questions")),
        user_input_form=form,
        suggested_questions_after_answer=_after_answer(features),
    )


@router.get("/preview/parameters", response_model=PreviewParameters)
def get_preview_parameters(
    app_id: str, session: SessionDep, account: ConsoleAccountDep
) -> PreviewParameters:
    """Opening statement, suggested questions and the input form of the app."""
    return preview_parameters(_console_app(session, account, app_id))


# ---- delivery state -------------------------------------------------------------------


def _project_url(session: Session, account: ConsoleAccount, app_id: str) -> str | None:
    return tracing_status(session, tenant_id=account.tenant_id, app_id=app_id).project_url


def _delivery(
    session: Session, account: ConsoleAccount, app_id: str, trace_id: str
) -> DeliveryState:
    owner = session.scalar(select(OutboxRow.app_id).where(OutboxRow.trace_id == trace_id).limit(1))
    found = trace_delivery(session, trace_id) if owner == app_id else None
    if found is None:
        return DeliveryState(
            trace_id=trace_id,
            state="not_recorded",
            reason="no trace was recorded for this run (tracing off or sampled out)",
        )
    url = None
    if found.state == "delivered":
        project_url = _project_url(session, account, app_id)
        url = f"{project_url.rstrip('/')}/traces/{trace_id}" if project_url else None
    return DeliveryState(trace_id=trace_id, state=found.state, reason=found.reason, trace_url=url)


@router.get("/messages/{message_id}/delivery", response_model=DeliveryState)
def get_message_delivery(
    app_id: str, message_id: str, session: SessionDep, account: ConsoleAccountDep
) -> DeliveryState:
    """Delivery state of a message's trace (a chatflow message's trace is its workflow run)."""
    app = _console_app(session, account, app_id)
    return _delivery(session, account, app.id, _trace_id_of_message(session, app, message_id))


@router.get("/workflow-runs/{workflow_run_id}/delivery", response_model=DeliveryState)
def get_workflow_run_delivery(
    app_id: str, workflow_run_id: str, session: SessionDep, account: ConsoleAccountDep
) -> DeliveryState:
    """Delivery state of a workflow run's trace."""
    app = _console_app(session, account, app_id)
    return _delivery(session, account, app.id, ids.trace_id(workflow_run_id))


def _trace_id_of_message(session: Session, app: App, message_id: str) -> str:
    """The trace id of a message: from the caller's external trace id, else from the
    workflow run for chatflow messages, else from the message id (decisions.md, "Ids")."""
    message = chat_repo.get_message(session, app_id=app.id, message_id=message_id)
    if message is None:
        raise NotFoundError("Message Not Exists.", code="not_found")
    if message.external_trace_id:
        return ids.external_trace_id(message.external_trace_id)
    return ids.trace_id(message.workflow_run_id or message.id)


# ---- runs ---------------------------------------------------------------------------------
# Chat and completion turns are served by ``api/console/apps.py`` (same services, console
# caller). Workflow and chatflow debug runs are here, at Dify's console paths.


class ConsoleWorkflowRequest(BaseModel):
    """A workflow run from the preview panel (the imported graph is the draft)."""

    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(default_factory=dict)
    response_mode: Literal["streaming", "blocking"] = "streaming"


class ConsoleChatflowRequest(BaseModel):
    """A chatflow turn from the preview panel."""

    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(default_factory=dict)
    query: str = Field(min_length=1, max_length=100_000)
    response_mode: Literal["streaming", "blocking"] = "streaming"
    conversation_id: str | None = None


def _detached_app(request: Request, account: ConsoleAccount, app_id: str) -> App:
    """The app row, loaded in a short session and detached (runs open their own sessions)."""
    with request.app.state.session_factory() as session:
        app = _console_app(session, account, app_id)
        session.expunge(app)
    return app


def _answer(result: dict[str, Any] | Iterator[Mapping[str, Any]]) -> Response:
    if isinstance(result, dict):
        return JSONResponse(result)
    return sse_response(result)


@router.post("/workflows/draft/run")
def run_workflow_draft(
    app_id: str,
    body: ConsoleWorkflowRequest,
    request: Request,
    settings: SettingsDep,
    account: ConsoleAccountDep,
) -> Response:
    """Run a workflow app as the console account (triggered_from debugging)."""
    app = _detached_app(request, account, app_id)
    _require_mode(app, ("workflow",), "A workflow run")
    result = workflow_service.run_workflow(
        request.app.state.session_factory,
        settings,
        app=app,
        inputs=body.inputs,
        user="",
        source=FromSource.CONSOLE,
        account_id=account.account_id,
        response_mode=body.response_mode,
        resources=resources_of(request),
        tasks=tasks_of(request),
    )
    return _answer(result)


@router.post("/advanced-chat/workflows/draft/run")
def run_chatflow_draft(
    app_id: str,
    body: ConsoleChatflowRequest,
    request: Request,
    settings: SettingsDep,
    account: ConsoleAccountDep,
) -> Response:
    """Run one chatflow turn as the console account (Dify's console path for chatflows)."""
    app = _detached_app(request, account, app_id)
    _require_mode(app, ("advanced-chat",), "A chatflow turn")
    result = chatflow_service.handle_chat_message(
        session_factory=request.app.state.session_factory,
        settings=settings,
        app=app,
        body=body.model_dump(),
        source=FromSource.CONSOLE,
        account_id=account.account_id,
        tasks=tasks_of(request),
        resources=resources_of(request),
    )
    return _answer(result)


def _require_mode(app: App, modes: Iterable[str], what: str) -> None:
    if app.mode not in modes:
        raise ValidationError(
            f"{what} is not available for a {app.mode} app.", code="app_unavailable"
        )


# ---- suggestions and ratings --------------------------------------------------------------


class FeedbackRequest(BaseModel):
    """A like, a dislike, or ``null`` to revoke the rating."""

    message_id: str = Field(min_length=1, max_length=64)
    rating: Literal["like", "dislike"] | None = None
    content: str | None = Field(default=None, max_length=10_000)


@router.get("/chat-messages/{message_id}/suggested-questions")
def get_suggested_questions(
    app_id: str, message_id: str, session: SessionDep, account: ConsoleAccountDep
) -> dict[str, Any]:
    """The follow-up questions stored with one of the console account's messages."""
    app = _console_app(session, account, app_id)
    message, _caller = chat_service.owned_message(
        session, app=app, message_id=message_id, user=None, account_id=account.account_id
    )
    return {"result": "success", "data": list(message.suggested_questions or [])}


@router.post("/feedbacks")
def post_feedback(
    app_id: str,
    body: FeedbackRequest,
    request: Request,
    settings: SettingsDep,
    account: ConsoleAccountDep,
) -> dict[str, Any]:
    """Rate one of the console account's messages (sent to Langfuse as a score)."""
    app = _detached_app(request, account, app_id)
    return feedback_service.rate_message(
        request.app.state.session_factory,
        settings,
        app=app,
        message_id=body.message_id,
        rating=body.rating,
        user=None,
        content=body.content,
        account_id=account.account_id,
    )


# ---- latest traces (Monitoring page) ----------------------------------------------------------


class RecentTrace(BaseModel):
    """One of the app's latest traces, with its Langfuse link once delivered."""

    trace_id: str
    kind: str
    state: str
    created_at: datetime
    delivered_at: datetime | None = None
    last_error_message: str | None = None
    url: str | None = None


class RecentTraces(BaseModel):
    """The app's latest traces, newest first."""

    data: list[RecentTrace]


@router.get("/recent-traces", response_model=RecentTraces)
def get_recent_traces(
    app_id: str,
    session: SessionDep,
    account: ConsoleAccountDep,
    limit: int = Query(default=5, ge=1, le=50),
) -> RecentTraces:
    """The app's latest traces (not scores), newest first; delivered ones link to Langfuse."""
    app = _console_app(session, account, app_id)
    rows = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.app_id == app.id, OutboxRow.kind != "score")
        .order_by(OutboxRow.id.desc())
        .limit(limit)
    ).all()
    project_url = _project_url(session, account, app.id) if rows else None
    return RecentTraces(
        data=[
            RecentTrace(
                trace_id=row.trace_id,
                kind=row.kind,
                state=row.state,
                created_at=row.created_at,
                delivered_at=row.delivered_at,
                last_error_message=row.last_error_message,
                url=(
                    f"{project_url.rstrip('/')}/traces/{row.trace_id}"
                    if project_url and row.state == "delivered"
                    else None
                ),
            )
            for row in rows
        ]
    )

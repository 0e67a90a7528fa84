"""Console: app imports, app list/get/delete, service API keys, datasets, and console runs.

``POST /console/api/apps/imports`` answers Dify's import shape
``{id, status, app_id, app_mode, warnings}``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from opstrail.api.console_auth import ConsoleAccountDep
from opstrail.api.deps import SessionDep, SettingsDep
from opstrail.api.service.chat import models_of, specs_of, tasks_of
from opstrail.api.sse import sse_response
from opstrail.errors import ValidationError
from opstrail.services import apps as app_service
from opstrail.services import datasets as dataset_service
from opstrail.services.chat import MessageBody, run_chat_message, run_completion_message
from opstrail.storage.repos import datasets as dataset_repo
from opstrail.storage.tables.apps import App
from opstrail.tracing.info import FromSource

router = APIRouter(tags=["console: apps"])


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Literal["yaml-content", "yaml-url"] = "yaml-content"
    yaml_content: str | None = Field(default=None, max_length=10 * 1024 * 1024)
    yaml_url: str | None = None
    dataset_map: dict[str, str] = Field(default_factory=dict)


def app_json(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "mode": app.mode,
        "description": app.description,
        "dsl_version": app.dsl_version,
        "created_at": int(app.created_at.timestamp()),
    }


@router.post("/apps/imports", summary="Import an app from DSL YAML")
def import_app(
    body: ImportBody, session: SessionDep, settings: SettingsDep, account: ConsoleAccountDep
) -> dict[str, Any]:
    """Create an app from a Dify DSL document; warnings list what is not honoured."""
    if body.mode != "yaml-content" or not body.yaml_content:
        raise ValidationError("only mode 'yaml-content' with a non-empty yaml_content is supported")
    result = app_service.import_app(
        session, settings, yaml_content=body.yaml_content, tenant_id=account.tenant_id,
        account_id=account.account_id, dataset_map=body.dataset_map,
    )
    return {
        "id": result.id,
        "status": result.status,
        "app_id": result.app_id,
        "app_mode": result.app_mode,
        "app_name": result.app_name,
        "warnings": list(result.warnings),
        "error": "",
    }


@router.get("/apps", summary="List apps")
def list_apps(session: SessionDep, account: ConsoleAccountDep) -> dict[str, Any]:
    rows = app_service.list_apps(session, tenant_id=account.tenant_id)
    return {"data": [app_json(a) for a in rows], "total": len(rows)}


@router.get("/apps/{app_id}", summary="Get an app")
def get_app(app_id: str, session: SessionDep, account: ConsoleAccountDep) -> dict[str, Any]:
    return app_json(app_service.get_app(session, tenant_id=account.tenant_id, app_id=app_id))


@router.delete("/apps/{app_id}", status_code=204, summary="Delete an app")
def delete_app(app_id: str, session: SessionDep, account: ConsoleAccountDep) -> Response:
    app_service.delete_app(session, tenant_id=account.tenant_id, app_id=app_id)
    return Response(status_code=204)


@router.post("/apps/{app_id}/api-keys", status_code=201, summary="Create a service API key")
def create_api_key(app_id: str, session: SessionDep, account: ConsoleAccountDep) -> dict[str, Any]:
    """The key is shown once; only its SHA-256 is stored."""
    app_service.get_app(session, tenant_id=account.tenant_id, app_id=app_id)
    token = app_service.create_api_key(session, app_id)
    return {"type": "app", "token": token}


class DocumentBody(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1, max_length=20 * 1024 * 1024)


class DatasetBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    id: str | None = None
    documents: list[DocumentBody] = Field(min_length=1)


@router.post("/datasets", status_code=201, summary="Create a dataset from texts")
def create_dataset(body: DatasetBody, session: SessionDep, account: ConsoleAccountDep) -> dict[str, Any]:
    summary = dataset_service.create_dataset_from_texts(
        session, tenant_id=account.tenant_id, name=body.name,
        documents=[(d.name, d.text) for d in body.documents], dataset_id=body.id,
    )
    return {"id": summary.id, "name": summary.name, "document_count": summary.documents,
            "chunk_count": summary.chunks}


@router.get("/datasets", summary="List datasets")
def list_datasets(session: SessionDep, account: ConsoleAccountDep) -> dict[str, Any]:
    rows = dataset_repo.list_datasets(session, tenant_id=account.tenant_id)
    return {"data": [{"id": d.id, "name": d.name} for d in rows], "total": len(rows)}


def _console_run(request: Request, settings: Any, account: Any, app_id: str, body: MessageBody,
                 *, chat: bool) -> Response:
    with request.app.state.session_factory() as session:
        app = app_service.get_app(session, tenant_id=account.tenant_id, app_id=app_id)
        session.expunge(app)
    runner = run_chat_message if chat else run_completion_message
    run = runner(request.app.state.session_factory, settings, app=app, request=body,
                 source=FromSource.CONSOLE, account_id=account.account_id,
                 models=models_of(request), tasks=tasks_of(request), specs=specs_of(request))
    if body.response_mode == "streaming":
        return sse_response(run.events())
    return JSONResponse(run.blocking())


@router.post("/apps/{app_id}/chat-messages", summary="Debug-run a chat message as the console")
def console_chat(app_id: str, body: MessageBody, request: Request, settings: SettingsDep,
                 account: ConsoleAccountDep) -> Response:
    return _console_run(request, settings, account, app_id, body, chat=True)


@router.post("/apps/{app_id}/completion-messages", summary="Debug-run a completion as the console")
def console_completion(app_id: str, body: MessageBody, request: Request, settings: SettingsDep,
                       account: ConsoleAccountDep) -> Response:
    return _console_run(request, settings, account, app_id, body, chat=False)

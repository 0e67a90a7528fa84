"""Console API of per-app tracing, compatible with Dify's (``/console/api/apps/{app_id}/...``).

- ``GET|POST /trace``: the switch ``{"enabled", "tracing_provider"}``; enabling needs a saved
  configuration (409 ``trace_config_not_exist``).
- ``GET|POST|PATCH|DELETE /trace-config``: a provider's configuration. GET of an unsaved one
  answers 200 ``{"has_not_configured": true}`` as Dify does; secrets are only ever shown as
  hints. ``?tracing_provider=`` is accepted on GET and DELETE.
- ``POST /trace-config/check``: validate the saved configuration again ("test connection").
- ``GET /trace-status``: state and delivery counts.
- ``GET|PUT /trace-policy``: content mode, mask patterns and sampling rate. POST and PATCH of
  ``/trace-config`` accept the same object as an optional top-level ``policy`` field.

Errors answer ``{"code", "message"}``: 401 console auth, 404 unknown app or config, 409 config
exists or enabling without one, 422 host or credentials refused (``host_unreachable``,
``tls_error``, ``not_langfuse``, ``unauthorized``, ``organization_key``, ``no_project``,
``usage_suspended``, ``invalid_host``), 400 malformed input.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from opstrail.api.console_auth import ConsoleAccountDep
from opstrail.api.deps import SessionDep, SettingsDep
from opstrail.config.crypto import Keyring
from opstrail.config.providers import PROVIDERS
from opstrail.config.tracing_config import ConfigView
from opstrail.services import tracing_settings as svc
from opstrail.settings import Settings
from opstrail.tracing.policy import ContentPolicy

router = APIRouter(tags=["tracing"])

# The registry's names, so the OpenAPI schema lists them (an unknown name is a 400).
if TYPE_CHECKING:
    ProviderName = str
else:
    ProviderName = Literal.__getitem__(tuple(PROVIDERS))
ProviderQuery = Annotated[
    ProviderName | None, Query(description="Provider name; default: the active one.")
]


def get_keyring(request: Request) -> Keyring:
    """The app's keyring, built once and kept on ``app.state``."""
    keyring: Keyring | None = getattr(request.app.state, "keyring", None)
    if keyring is None:
        settings: Settings = request.app.state.settings
        keyring = Keyring.from_settings(settings)
        request.app.state.keyring = keyring
    return keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


# --- schemas ----------------------------------------------------------------------------------


class TraceSwitchIn(BaseModel):
    """Turn tracing on or off, optionally choosing the provider."""

    enabled: bool
    tracing_provider: ProviderName | None = None


class TraceSwitchOut(BaseModel):
    enabled: bool
    tracing_provider: str | None


class ResultOut(BaseModel):
    result: Literal["success"] = "success"


class PolicyIn(BaseModel):
    """A change of the content policy; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    content_mode: Literal["full", "masked", "metadata-only"] | None = None
    mask_patterns: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        default=None,
        max_length=32,
        description="Regular expressions masked in 'masked' mode (replace the defaults).",
    )
    sample_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Share of successful runs traced."
    )

    def change(self) -> svc.PolicyInput:
        return svc.PolicyInput(
            content_mode=self.content_mode,
            mask_patterns=self.mask_patterns,
            sample_rate=self.sample_rate,
        )


class PolicyOut(BaseModel):
    content_mode: str
    mask_patterns: list[str]
    sample_rate: float

    @classmethod
    def of(cls, policy: ContentPolicy) -> PolicyOut:
        return cls(
            content_mode=policy.mode,
            mask_patterns=list(policy.mask_patterns),
            sample_rate=policy.sample_rate,
        )


ConfigValue = Annotated[str, Field(max_length=4096)] | None


class TraceConfigIn(BaseModel):
    """A provider configuration. For Langfuse ``tracing_config`` holds ``public_key``,
    ``secret_key``, ``host`` (default https://cloud.langfuse.com) and optionally
    ``ingestion_path`` (``otlp``/``legacy``; empty: chosen from the server version)."""

    tracing_provider: ProviderName
    tracing_config: dict[Annotated[str, Field(max_length=64)], ConfigValue] = Field(max_length=16)
    policy: PolicyIn | None = None


class TraceConfigPatch(BaseModel):
    """A change: a secret that is absent, null or exactly the hint shown stays unchanged."""

    tracing_provider: ProviderName
    tracing_config: dict[Annotated[str, Field(max_length=64)], ConfigValue] | None = Field(
        default=None, max_length=16
    )
    policy: PolicyIn | None = None


class ProjectOut(BaseModel):
    id: str | None
    name: str | None
    url: str | None


class ServerOut(BaseModel):
    version: str | None
    ingestion_path: str
    warning: str | None
    validated_at: datetime | None


class TraceConfigOut(BaseModel):
    id: str
    app_id: str
    tracing_provider: str
    tracing_config: dict[str, str | None]
    project: ProjectOut
    server: ServerOut
    policy: PolicyOut
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TraceConfigSavedOut(TraceConfigOut):
    result: Literal["success"] = "success"


class NotConfiguredOut(BaseModel):
    has_not_configured: Literal[True] = True


class DeletedOut(ResultOut):
    disabled: bool
    cancelled_rows: int


class TraceStatusOut(BaseModel):
    app_id: str
    state: Literal["not_configured", "disabled", "started", "unauthorized", "unreachable", "error"]
    enabled: bool
    tracing_provider: str | None
    delivered: int
    pending: int
    retrying: int
    dead: int
    last_success_at: datetime | None
    last_error: dict[str, str | None] | None
    server_version: str | None
    ingestion_path: str | None
    project_url: str | None
    server_warning: str | None
    validated_at: datetime | None


def _config_out(view: ConfigView, policy: ContentPolicy) -> dict[str, object]:
    tracing_config: dict[str, str | None] = {**view.secret_hints, **view.settings}
    tracing_config["project_url"] = view.project.project_url
    return {
        "id": view.id,
        "app_id": view.app_id,
        "tracing_provider": view.provider,
        "tracing_config": tracing_config,
        "project": ProjectOut(
            id=view.project.project_id, name=view.project.project_name, url=view.project.project_url
        ),
        "server": ServerOut(
            version=view.project.server_version,
            ingestion_path=view.project.ingestion_path,
            warning=view.project.warning,
            validated_at=view.validated_at,
        ),
        "policy": PolicyOut.of(policy),
        "is_active": view.is_active,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


def _saved_config_out(
    session: Session, view: ConfigView, *, tenant_id: str, app_id: str
) -> dict[str, object]:
    # The answer of every route that saves or checks a configuration: it and the app's policy.
    policy = svc.get_policy(session, tenant_id=tenant_id, app_id=app_id)
    return {"result": "success", **_config_out(view, policy)}


# --- routes -----------------------------------------------------------------------------------


@router.get("/apps/{app_id}/trace", response_model=TraceSwitchOut)
def get_trace(app_id: str, account: ConsoleAccountDep, session: SessionDep) -> TraceSwitchOut:
    """Whether the app traces, and to which provider."""
    switch = svc.get_switch(session, tenant_id=account.tenant_id, app_id=app_id)
    return TraceSwitchOut(enabled=switch.enabled, tracing_provider=switch.provider)


@router.post("/apps/{app_id}/trace", response_model=ResultOut)
def post_trace(
    app_id: str, body: TraceSwitchIn, account: ConsoleAccountDep, session: SessionDep
) -> ResultOut:
    """Turn tracing on (needs a saved configuration) or off."""
    svc.set_switch(
        session,
        tenant_id=account.tenant_id,
        app_id=app_id,
        enabled=body.enabled,
        provider=body.tracing_provider,
    )
    return ResultOut()


@router.get("/apps/{app_id}/trace-config", response_model=TraceConfigOut | NotConfiguredOut)
def get_trace_config(
    app_id: str,
    account: ConsoleAccountDep,
    session: SessionDep,
    keyring: KeyringDep,
    tracing_provider: ProviderQuery = None,
) -> dict[str, object]:
    """The saved configuration with secrets as hints, or ``{"has_not_configured": true}``."""
    view = svc.get_config(
        session, keyring, tenant_id=account.tenant_id, app_id=app_id, provider=tracing_provider
    )
    if view is None:
        return {"has_not_configured": True}
    policy = svc.get_policy(session, tenant_id=account.tenant_id, app_id=app_id)
    return _config_out(view, policy)


@router.post("/apps/{app_id}/trace-config", response_model=TraceConfigSavedOut)
def post_trace_config(
    app_id: str,
    body: TraceConfigIn,
    account: ConsoleAccountDep,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
) -> dict[str, object]:
    """Validate the credentials against the provider and save them (409 if one exists)."""
    view = svc.create_config(
        session,
        settings,
        keyring,
        tenant_id=account.tenant_id,
        app_id=app_id,
        provider=body.tracing_provider,
        values=body.tracing_config,
        policy=body.policy.change() if body.policy else None,
    )
    return _saved_config_out(session, view, tenant_id=account.tenant_id, app_id=app_id)


@router.patch("/apps/{app_id}/trace-config", response_model=TraceConfigSavedOut)
def patch_trace_config(
    app_id: str,
    body: TraceConfigPatch,
    account: ConsoleAccountDep,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
) -> dict[str, object]:
    """Change the configuration; changed keys or host are validated again (404 if none)."""
    view = svc.update_config(
        session,
        settings,
        keyring,
        tenant_id=account.tenant_id,
        app_id=app_id,
        provider=body.tracing_provider,
        values=body.tracing_config,
        policy=body.policy.change() if body.policy else None,
    )
    return _saved_config_out(session, view, tenant_id=account.tenant_id, app_id=app_id)


@router.post("/apps/{app_id}/trace-config/check", response_model=TraceConfigSavedOut)
def check_trace_config(
    app_id: str,
    account: ConsoleAccountDep,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    tracing_provider: ProviderQuery = None,
) -> dict[str, object]:
    """Validate the saved configuration again ("test connection") and store the server's
    current version and ingestion path; 422 with the reason's code if it fails now."""
    view = svc.recheck_config(
        session,
        settings,
        keyring,
        tenant_id=account.tenant_id,
        app_id=app_id,
        provider=tracing_provider,
    )
    return _saved_config_out(session, view, tenant_id=account.tenant_id, app_id=app_id)


@router.delete("/apps/{app_id}/trace-config", response_model=DeletedOut)
def delete_trace_config(
    app_id: str,
    account: ConsoleAccountDep,
    session: SessionDep,
    tracing_provider: ProviderQuery = None,
) -> DeletedOut:
    """Remove the configuration; removing the active one turns tracing off (404 if none)."""
    result = svc.delete_config(
        session, tenant_id=account.tenant_id, app_id=app_id, provider=tracing_provider
    )
    return DeletedOut(disabled=result.disabled, cancelled_rows=result.cancelled_rows)


@router.get("/apps/{app_id}/trace-status", response_model=TraceStatusOut)
def get_trace_status(
    app_id: str, account: ConsoleAccountDep, session: SessionDep
) -> TraceStatusOut:
    """State (not_configured, disabled, started, unauthorized, unreachable, error) and counts."""
    status = svc.tracing_status(session, tenant_id=account.tenant_id, app_id=app_id)
    last_error = (
        {"code": status.last_error_code, "message": status.last_error_message}
        if status.last_error_code or status.last_error_message
        else None
    )
    return TraceStatusOut(
        app_id=status.app_id,
        state=status.state,
        enabled=status.enabled,
        tracing_provider=status.provider,
        delivered=status.delivered,
        pending=status.pending,
        retrying=status.retrying,
        dead=status.dead,
        last_success_at=status.last_success_at,
        last_error=last_error,
        server_version=status.server_version,
        ingestion_path=status.ingestion_path,
        project_url=status.project_url,
        server_warning=status.server_warning,
        validated_at=status.validated_at,
    )


@router.get("/apps/{app_id}/trace-policy", response_model=PolicyOut)
def get_trace_policy(app_id: str, account: ConsoleAccountDep, session: SessionDep) -> PolicyOut:
    """The app's content policy and sampling rate."""
    return PolicyOut.of(svc.get_policy(session, tenant_id=account.tenant_id, app_id=app_id))


@router.put("/apps/{app_id}/trace-policy", response_model=PolicyOut)
def put_trace_policy(
    app_id: str, body: PolicyIn, account: ConsoleAccountDep, session: SessionDep
) -> PolicyOut:
    """Change the content policy; omitted fields keep their value."""
    policy = svc.set_policy(
        session, tenant_id=account.tenant_id, app_id=app_id, change=body.change()
    )
    return PolicyOut.of(policy)

"""``GET /v1/conversations`` and ``POST /v1/conversations/{id}/name``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from opstrail.api.app_auth import AppTokenDep
from opstrail.api.deps import SessionDep, SettingsDep
from opstrail.api.service.chat import models_of
from opstrail.services.chat import list_conversations, rename_conversation

router = APIRouter(tags=["service: conversations"])


@router.get("/conversations", summary="Conversations of a user")
def conversations(
    app: AppTokenDep,
    session: SessionDep,
    user: Annotated[str, Query(min_length=1, max_length=255)],
    last_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, object]:
    """The user's conversations, most recently updated first."""
    return list_conversations(session, app=app, user=user, limit=limit, last_id=last_id)


class RenameBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, max_length=255)
    auto_generate: bool = False
    user: str = Field(min_length=1, max_length=255)


@router.post("/conversations/{conversation_id}/name", summary="Rename a conversation")
def rename(
    request: Request, app: AppTokenDep, settings: SettingsDep, conversation_id: str, body: RenameBody
) -> dict[str, object]:
    """Set the name, or generate it with the app's model (``auto_generate``)."""
    return rename_conversation(
        request.app.state.session_factory, settings, app=app, conversation_id=conversation_id,
        user=body.user, name=body.name, auto_generate=body.auto_generate, models=models_of(request),
    )

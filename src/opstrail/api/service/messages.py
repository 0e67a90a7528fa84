"""``GET /v1/messages``, ``GET /v1/messages/{id}/suggested``, ``POST /v1/messages/{id}/feedbacks``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from opstrail.api.app_auth import AppTokenDep
from opstrail.api.deps import SessionDep, SettingsDep
from opstrail.api.service.chat import specs_of
from opstrail.services.chat import list_messages, suggested_questions
from opstrail.services.feedback import rate_message

router = APIRouter(tags=["service: messages"])


@router.get("/messages", summary="Conversation history")
def messages(
    app: AppTokenDep,
    session: SessionDep,
    conversation_id: Annotated[str, Query(min_length=1, max_length=64)],
    user: Annotated[str, Query(min_length=1, max_length=255)],
    first_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, object]:
    """A page of one conversation's messages, oldest first (Dify's shape)."""
    return list_messages(session, app=app, conversation_id=conversation_id, user=user,
                         limit=limit, first_id=first_id)


@router.get("/messages/{message_id}/suggested", summary="Suggested follow-up questions")
def suggested(
    request: Request,
    app: AppTokenDep,
    session: SessionDep,
    message_id: str,
    user: Annotated[str, Query(min_length=1, max_length=255)],
) -> dict[str, object]:
    """The questions generated right after the message's answer."""
    return suggested_questions(session, app=app, message_id=message_id, user=user,
                               specs=specs_of(request))


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rating: Literal["like", "dislike"] | None = None
    user: str = Field(min_length=1, max_length=255)
    content: str | None = Field(default=None, max_length=10_000)


@router.post("/messages/{message_id}/feedbacks", summary="Rate a message")
def feedbacks(
    request: Request, app: AppTokenDep, settings: SettingsDep, message_id: str, body: FeedbackBody
) -> dict[str, str]:
    """Like, dislike or (rating null) revoke; becomes a Langfuse score."""
    return rate_message(request.app.state.session_factory, settings, app=app,
                        message_id=message_id, rating=body.rating, user=body.user,
                        content=body.content)

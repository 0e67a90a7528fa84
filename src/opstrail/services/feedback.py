"""Message feedback: store the rating and record it as a score (``record_feedback``) in the
same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy.orm import Session

from opstrail.services.chat import message_caller_context, owned_message
from opstrail.services.trace_recording import record_feedback
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.repos import chat as chat_repo
from opstrail.storage.tables.apps import App
from opstrail.tracing.info import FeedbackInfo, FromSource


def rate_message(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    app: App,
    message_id: str,
    rating: Literal["like", "dislike"] | None,
    user: str | None,
    content: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """Like, dislike or (``None``) revoke a rating of one of the caller's messages.

    The score targets the message's trace: the caller's external trace id when the run had
    one, the workflow run for chatflow messages, else the message id.

    Raises:
        NotFoundError: the message is absent or another user's.
    """
    source = FromSource.CONSOLE if account_id else FromSource.API
    with session_factory() as session:
        message, caller = owned_message(session, app=app, message_id=message_id, user=user,
                                        account_id=account_id)
        chat_repo.set_feedback(
            session, message=message, rating=rating, content=content, from_source=source.value,
            from_end_user_id=caller.end_user_id, from_account_id=caller.account_id,
        )
        if message.external_trace_id:
            domain_id, external = message.external_trace_id, True
        elif message.workflow_run_id:
            domain_id, external = message.workflow_run_id, False
        else:
            domain_id, external = message.id, False
        record_feedback(
            session,
            settings,
            FeedbackInfo(
                message_id=message.id,
                trace_domain_id=domain_id,
                rating=rating,
                created_at=utcnow(),
                context=message_caller_context(settings, app, message),
                content=content,
                trace_id_is_external=external,
            ),
        )
        session.commit()
    return {"result": "success"}

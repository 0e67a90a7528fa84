"""Queries over end users, conversations, messages, agent thoughts and feedback.

Keyword-only functions taking the caller's session; none commits. Chatflow services use the
same functions for their conversations and messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from opstrail.storage.base import utcnow
from opstrail.storage.tables.chat import (
    Conversation,
    EndUser,
    Message,
    MessageAgentThought,
    MessageFeedback,
)


def get_or_create_end_user(session: Session, *, tenant_id: str, app_id: str, session_id: str) -> EndUser:
    """The end user of ``app_id`` called ``session_id`` (the API's ``user``), created once."""
    user = session.scalars(
        select(EndUser).where(EndUser.app_id == app_id, EndUser.session_id == session_id)
    ).first()
    if user is None:
        user = EndUser(id=str(uuid.uuid4()), tenant_id=tenant_id, app_id=app_id, session_id=session_id)
        session.add(user)
        session.flush()
    return user


def find_end_user(session: Session, *, app_id: str, session_id: str) -> EndUser | None:
    return session.scalars(
        select(EndUser).where(EndUser.app_id == app_id, EndUser.session_id == session_id)
    ).first()


def get_end_user(session: Session, *, end_user_id: str) -> EndUser | None:
    return session.get(EndUser, end_user_id)


def create_conversation(
    session: Session,
    *,
    app_id: str,
    mode: str,
    inputs: dict[str, Any],
    introduction: str,
    from_source: str,
    from_end_user_id: str | None,
    from_account_id: str | None,
    conversation_id: str | None = None,
) -> Conversation:
    now = utcnow()
    conversation = Conversation(
        id=conversation_id or str(uuid.uuid4()),
        app_id=app_id,
        mode=mode,
        name="",
        inputs=inputs,
        introduction=introduction,
        status="normal",
        from_source=from_source,
        from_end_user_id=from_end_user_id,
        from_account_id=from_account_id,
        dialogue_count=0,
        name_generations=0,
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    session.flush()
    return conversation


def get_conversation(session: Session, *, app_id: str, conversation_id: str) -> Conversation | None:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.app_id != app_id or conversation.status == "deleted":
        return None
    return conversation


def list_conversations(
    session: Session,
    *,
    app_id: str,
    from_end_user_id: str | None,
    from_account_id: str | None = None,
    limit: int = 20,
    last_id: str | None = None,
) -> tuple[list[Conversation], bool]:
    """Conversations of one user, newest update first; ``(page, has_more)``."""
    query = select(Conversation).where(
        Conversation.app_id == app_id, Conversation.status != "deleted"
    )
    if from_account_id is not None:
        query = query.where(Conversation.from_account_id == from_account_id)
    else:
        query = query.where(Conversation.from_end_user_id == from_end_user_id)
    if last_id:
        last = session.get(Conversation, last_id)
        if last is not None:
            query = query.where(Conversation.updated_at < last.updated_at)
    rows = list(
        session.scalars(query.order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit + 1))
    )
    return rows[:limit], len(rows) > limit


def history(session: Session, *, conversation_id: str, limit: int) -> list[Message]:
    """The last ``limit`` finished messages of a conversation, oldest first."""
    rows = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.status == "normal",
               Message.answer != "")
        .order_by(Message.created_at.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


def create_message(session: Session, **fields: Any) -> Message:
    """Insert a message row (fields as the table's columns)."""
    now = utcnow()
    fields.setdefault("created_at", now)
    fields.setdefault("updated_at", now)
    message = Message(**fields)
    session.add(message)
    session.flush()
    return message


def get_message(session: Session, *, app_id: str, message_id: str) -> Message | None:
    message = session.get(Message, message_id)
    if message is None or message.app_id != app_id:
        return None
    return message


def list_messages(
    session: Session,
    *,
    conversation_id: str,
    limit: int = 20,
    first_id: str | None = None,
) -> tuple[list[Message], bool]:
    """A page of a conversation's messages, oldest first, ending before ``first_id``."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if first_id:
        first = session.get(Message, first_id)
        if first is not None:
            query = query.where(Message.created_at < first.created_at)
    rows = list(session.scalars(query.order_by(Message.created_at.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    return list(reversed(rows[:limit])), has_more


def first_message(session: Session, *, conversation_id: str) -> Message | None:
    """The oldest message of a conversation (the one a title is generated from)."""
    return session.scalars(
        select(Message).where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at).limit(1)
    ).first()


def add_thoughts(session: Session, *, message_id: str, thoughts: Sequence[dict[str, Any]]) -> None:
    for thought in thoughts:
        session.add(MessageAgentThought(message_id=message_id, **thought))
    session.flush()


def thoughts_of(session: Session, *, message_ids: Sequence[str]) -> dict[str, list[MessageAgentThought]]:
    if not message_ids:
        return {}
    out: dict[str, list[MessageAgentThought]] = {}
    for row in session.scalars(
        select(MessageAgentThought)
        .where(MessageAgentThought.message_id.in_(list(message_ids)))
        .order_by(MessageAgentThought.position)
    ):
        out.setdefault(row.message_id, []).append(row)
    return out


def feedback_of(session: Session, *, message_ids: Sequence[str], from_source: str) -> dict[str, MessageFeedback]:
    if not message_ids:
        return {}
    rows = session.scalars(
        select(MessageFeedback).where(
            MessageFeedback.message_id.in_(list(message_ids)),
            MessageFeedback.from_source == from_source,
        )
    )
    return {row.message_id: row for row in rows}


def set_feedback(
    session: Session,
    *,
    message: Message,
    rating: str | None,
    content: str | None,
    from_source: str,
    from_end_user_id: str | None,
    from_account_id: str | None,
) -> MessageFeedback | None:
    """Create, change or (rating ``None``) delete the feedback of one source on a message."""
    existing = session.scalars(
        select(MessageFeedback).where(
            MessageFeedback.message_id == message.id, MessageFeedback.from_source == from_source
        )
    ).first()
    if rating is None:
        if existing is not None:
            session.delete(existing)
            session.flush()
        return None
    now = utcnow()
    if existing is None:
        existing = MessageFeedback(
            id=str(uuid.uuid4()),
            app_id=message.app_id,
            message_id=message.id,
            conversation_id=message.conversation_id,
            rating=rating,
            content=content,
            from_source=from_source,
            from_end_user_id=from_end_user_id,
            from_account_id=from_account_id,
            created_at=now,
            updated_at=now,
        )
        session.add(existing)
    else:
        existing.rating = rating
        existing.content = content
        existing.updated_at = now
    session.flush()
    return existing


def count_messages(session: Session, *, conversation_id: str) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Message).where(Message.conversation_id == conversation_id))
        or 0
    )


def touch_conversation(session: Session, *, conversation: Conversation, at: datetime | None = None) -> None:
    conversation.updated_at = at or utcnow()
    conversation.dialogue_count = (conversation.dialogue_count or 0) + 1


def delete_app_rows(session: Session, *, app_id: str) -> None:
    """Delete the chat rows of an app (SQLite does not cascade without PRAGMA in every path)."""
    message_ids = select(Message.id).where(Message.app_id == app_id)
    session.execute(delete(MessageAgentThought).where(MessageAgentThought.message_id.in_(message_ids)))
    session.execute(delete(MessageFeedback).where(MessageFeedback.app_id == app_id))
    session.execute(delete(Message).where(Message.app_id == app_id))
    session.execute(delete(Conversation).where(Conversation.app_id == app_id))
    session.execute(delete(EndUser).where(EndUser.app_id == app_id))

"""End users, conversations, messages, agent thoughts and feedback of chat apps.

Chatflow (advanced-chat) runs store their conversations and messages here too
(``workflow_run_id`` links a message to its run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from opstrail.storage.base import Base, UTCDateTime, utcnow


class EndUser(Base):
    """A caller's user of one app: the ``user`` string of the service API."""

    __tablename__ = "end_users"
    __table_args__ = (UniqueConstraint("app_id", "session_id", name="uq_end_users_app_session"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), default="service_api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """A conversation of a chat, agent-chat or chatflow app.

    ``name_generations`` counts title generations (the ``sequence`` of their traces).
    """

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255), default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    introduction: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="normal")
    from_source: Mapped[str] = mapped_column(String(16))
    from_end_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    from_account_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    dialogue_count: Mapped[int] = mapped_column(Integer, default=0)
    name_generations: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """One message: query, answer, what it cost and how it ended.

    ``trace_id`` is the 32-hex Langfuse trace id the message's trace was recorded under;
    ``external_trace_id`` is the caller's raw trace id, if any.
    """

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    mode: Mapped[str] = mapped_column(String(32))
    query: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="normal")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_provider: Mapped[str] = mapped_column(String(255), default="")
    model_id: Mapped[str] = mapped_column(String(255), default="")
    message_tokens: Mapped[int] = mapped_column(Integer, default=0)
    answer_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_price: Mapped[Any] = mapped_column(Numeric(20, 7), nullable=True)
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    latency: Mapped[float] = mapped_column(Float, default=0.0)
    suggested_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    retriever_resources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    agent_based: Mapped[bool] = mapped_column(Boolean, default=False)
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    external_trace_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    workflow_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    from_source: Mapped[str] = mapped_column(String(16))
    from_end_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    from_account_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageAgentThought(Base):
    """One reasoning round of an agent message."""

    __tablename__ = "message_agent_thoughts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    thought: Mapped[str] = mapped_column(Text, default="")
    tool: Mapped[str] = mapped_column(Text, default="")
    tool_input: Mapped[str] = mapped_column(Text, default="")
    observation: Mapped[str] = mapped_column(Text, default="")
    message_tokens: Mapped[int] = mapped_column(Integer, default=0)
    answer_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_price: Mapped[Any] = mapped_column(Numeric(20, 7), nullable=True)
    latency: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageFeedback(Base):
    """A like or dislike of a message, one per message and source (user or console)."""

    __tablename__ = "message_feedbacks"
    __table_args__ = (
        UniqueConstraint("message_id", "from_source", name="uq_message_feedbacks_message_source"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    rating: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_source: Mapped[str] = mapped_column(String(16))
    from_end_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    from_account_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

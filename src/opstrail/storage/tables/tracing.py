"""Per-app tracing: the one switch (enabled, active provider, content policy) and each
provider's saved configuration.

``AppTracing`` is the single source of truth for whether an app traces and where to; a
provider's ``TracingProviderConfig`` holds its non-secret settings in plaintext JSON
(``settings_json``: host, path override) and every secret (both Langfuse keys) only as one
Fernet token (``secrets_ciphertext``). What validation learned (project, server version,
ingestion path) is stored once at save time, so reading a config never calls the provider.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opstrail.storage.base import Base, UTCDateTime, utcnow


class AppTracing(Base):
    """Whether an app traces, to which provider, with which content policy and sampling.

    ``content_mode`` is ``full``, ``masked`` or ``metadata-only``; ``mask_patterns_json`` is a
    JSON list of regular expressions, or NULL for the defaults (e-mails, card numbers).
    """

    __tablename__ = "app_tracing"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_mode: Mapped[str] = mapped_column(String(16), default="full")
    mask_patterns_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    sample_rate: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TracingProviderConfig(Base):
    """One provider's validated configuration for one app (at most one per provider)."""

    __tablename__ = "tracing_provider_configs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    settings_json: Mapped[str] = mapped_column(Text)
    secrets_ciphertext: Mapped[str] = mapped_column(Text)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    server_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ingestion_path: Mapped[str | None] = mapped_column(String(16), nullable=True)
    server_warning: Mapped[str | None] = mapped_column(Text, nullable=True)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("app_id", "provider", name="uq_tracing_provider_configs_app_provider"),
    )

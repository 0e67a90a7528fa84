"""Deployment settings, read once at startup from ``OPSTRAIL_*`` variables and passed down.

Nothing reads the environment anywhere else; build ``Settings()`` in the CLI callback or in
``create_app`` and hand it to what needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every deployment setting of opstrail (table in docs/operations.md)."""

    model_config = SettingsConfigDict(env_prefix="OPSTRAIL_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".opstrail"),
        description="Where the SQLite database, the key file and the console token hash live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/opstrail.db. "
        "postgresql+psycopg://... for PostgreSQL.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Comma-separated Fernet keys, first one encrypts. Default: a key file "
        "<data_dir>/secret.key created with mode 0600.",
    )
    console_token: str | None = Field(
        default=None,
        description="Bearer token of the console API. Default: generated on first start, "
        "printed once, stored only as a hash.",
    )
    environment_api: str = Field(
        default="production",
        pattern=r"^[a-z0-9_-]{1,40}$",
        description="Langfuse environment of service-API runs.",
    )
    environment_console: str = Field(
        default="debug",
        pattern=r"^[a-z0-9_-]{1,40}$",
        description="Langfuse environment of console (debug and preview) runs.",
    )
    low_cardinality_names: bool = Field(
        default=False,
        description="Trace names 'workflow'/'message' instead of 'workflow_<id>'/'message_<id>'.",
    )
    release: str | None = Field(default=None, description="langfuse.release on every span.")
    model_fallback: Literal["offline"] | None = Field(
        default=None,
        description="'offline' runs models whose provider is not configured on the offline model.",
    )
    refuse_private_hosts: bool = Field(
        default=False,
        description="Refuse tracing hosts and http-request targets on private networks.",
    )
    loopback_only_hosts: bool = Field(
        default=False,
        description="Tests: resolve tracing hosts only to loopback addresses.",
    )
    encode_at_record: bool = Field(
        default=True,
        description=(
            "Build and encode each routed trace where it is recorded (the server: on a "
            "thread, after the run commits), so workers send stored bytes (more CPU for the "
            "app servers, two to three times the worker throughput)."
        ),
    )
    embedded_dispatcher: bool = Field(
        default=True,
        description="Deliver traces from inside `opstrail serve` (off: run `opstrail worker`).",
    )
    dispatch_batch_size: int = Field(
        default=200, ge=1, le=10_000, description="Outbox rows claimed and sent per batch."
    )
    dispatch_cycles: int = Field(
        default=2, ge=1, le=16,
        description="Dispatch cycles a worker keeps in flight while a backlog lasts.",
    )
    dispatch_linger: float = Field(
        default=0.2, ge=0, le=5,
        description=(
            "Seconds a worker waits after a small batch, so that the next one carries more "
            "traces: at 100 traces/s, 0.2 s costs about 100 ms of latency and saves half "
            "the worker's CPU per trace."
        ),
    )
    dispatch_poll_interval: float = Field(
        default=0.05, gt=0, description="Seconds between outbox polls when idle."
    )
    dispatch_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed row stays leased; after a crash it is due again then.",
    )
    max_row_age_days: float = Field(
        default=7.0,
        gt=0,
        description="Undelivered rows older than this are dead-lettered (never deleted).",
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Delivered rows keep their trace info this long, for `opstrail export`.",
    )
    run_timeout_seconds: float = Field(
        default=300.0, gt=0, description="A workflow run that takes longer fails (ERROR)."
    )
    code_timeout_seconds: float = Field(
        default=10.0, gt=0, description="CPU-time limit of one code node execution."
    )
    code_memory_mb: int = Field(
        default=256, ge=16, description="Memory limit of one code node execution."
    )
    http_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of http-request nodes and Langfuse calls."
    )
    log_json: bool = Field(
        default=True, description="JSON log lines (secrets redacted); off: plain text."
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in use, with the embedded SQLite default filled in."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{(self.data_dir / 'opstrail.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

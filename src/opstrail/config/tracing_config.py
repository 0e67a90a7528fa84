"""An app's tracing configuration in the database: the switch, the policy, provider configs.

Reading functions never call the network: what validation learned is stored with the config.
Writing functions change rows in the caller's session and never commit (services do).

States (decisions.md, "Configuration"): ``not_configured`` (no provider config saved),
``disabled`` (saved, switched off), ``started`` (on, and delivery is not failing), and the
delivery failures ``unauthorized``, ``unreachable``, ``error``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from opstrail.config.crypto import Keyring
from opstrail.config.obfuscation import obfuscate
from opstrail.config.providers import ProviderValues, ValidatedProject, provider_named
from opstrail.errors import ConfigError, NotFoundError
from opstrail.storage.base import utcnow
from opstrail.storage.driver_sql import driver_statement
from opstrail.storage.tables.apps import App
from opstrail.storage.tables.tracing import AppTracing, TracingProviderConfig
from opstrail.tracing.policy import DEFAULT_MASK_PATTERNS, ContentPolicy

TracingState = Literal[
    "not_configured", "disabled", "started", "unauthorized", "unreachable", "error"
]
FAILING_STATES: Final = frozenset({"unauthorized", "unreachable", "error"})
# App ids are UUIDs; anything else cannot name an app (and never reaches the database).
_APP_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    """What ``record_trace`` needs: whether to route traces, where, and the policy to apply.

    ``ingestion_path`` is the path the saved configuration last validated (``otlp`` or
    ``legacy``), ``None`` when not enabled.
    """

    enabled: bool
    provider: str | None
    policy: ContentPolicy
    ingestion_path: str | None = None


@dataclass(frozen=True, slots=True)
class TracingSwitch:
    """Dify's ``App.tracing``: ``{"enabled", "tracing_provider"}``."""

    enabled: bool
    provider: str | None


@dataclass(frozen=True, slots=True)
class ConfigView:
    """A provider configuration as shown to users: secrets only as hints."""

    id: str
    app_id: str
    provider: str
    secret_hints: Mapping[str, str]
    settings: Mapping[str, str | None]
    project: ValidatedProject
    validated_at: datetime | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


def find_app(session: Session, app_id: str, *, tenant_id: str | None = None) -> App:
    """The app with ``app_id`` (in ``tenant_id`` when given).

    Raises:
        NotFoundError: code ``app_not_found``.
    """
    app = session.get(App, app_id) if _APP_ID_RE.match(app_id) else None
    if app is None or (tenant_id is not None and app.tenant_id != tenant_id):
        raise NotFoundError(f"App {app_id!r} does not exist.", code="app_not_found")
    return app


def load_switch(session: Session, app_id: str) -> AppTracing | None:
    """The app's tracing row, if one was ever written."""
    return session.get(AppTracing, app_id)


def switch_row(session: Session, app_id: str) -> AppTracing:
    """The app's tracing row, added to the session (not flushed) when missing."""
    row = session.get(AppTracing, app_id)
    if row is None:
        moment = utcnow()
        row = AppTracing(
            app_id=app_id,
            enabled=False,
            provider=None,
            content_mode="full",
            mask_patterns_json=None,
            sample_rate=1.0,
            created_at=moment,
            updated_at=moment,
        )
        session.add(row)
    return row


def switch_of(row: AppTracing | None) -> TracingSwitch:
    """The switch as Dify shows it."""
    if row is None:
        return TracingSwitch(enabled=False, provider=None)
    return TracingSwitch(enabled=row.enabled, provider=row.provider)


def load_provider_config(
    session: Session, app_id: str, provider: str
) -> TracingProviderConfig | None:
    """The saved configuration of ``provider`` for the app, if any."""
    return session.scalars(
        select(TracingProviderConfig).where(
            TracingProviderConfig.app_id == app_id, TracingProviderConfig.provider == provider
        )
    ).first()


def policy_of(row: AppTracing | None) -> ContentPolicy:
    """The app's content policy (the defaults when nothing is stored)."""
    if row is None:
        return ContentPolicy()
    patterns = (
        tuple(json.loads(row.mask_patterns_json))
        if row.mask_patterns_json is not None
        else DEFAULT_MASK_PATTERNS
    )
    return ContentPolicy(
        mode=row.content_mode,  # type: ignore[arg-type]
        mask_patterns=patterns,
        sample_rate=row.sample_rate,
    )


def store_policy(row: AppTracing, policy: ContentPolicy) -> None:
    """Write ``policy`` onto the app's tracing row (defaults stored as NULL patterns)."""
    row.content_mode = policy.mode
    row.mask_patterns_json = (
        None
        if policy.mask_patterns == DEFAULT_MASK_PATTERNS
        else json.dumps(list(policy.mask_patterns))
    )
    row.sample_rate = policy.sample_rate
    row.updated_at = utcnow()


# Built once: recording_settings runs on the request path of every run, and building the
# expression each time cost as much as executing it. Immutable, like any other constant.
_RECORDING_QUERY: Final = select(
    AppTracing.enabled,
    AppTracing.provider,
    AppTracing.content_mode,
    AppTracing.mask_patterns_json,
    AppTracing.sample_rate,
    # The active provider's saved path; NULL when it has no saved configuration.
    select(func.coalesce(TracingProviderConfig.ingestion_path, "otlp"))
    .where(
        TracingProviderConfig.app_id == AppTracing.app_id,
        TracingProviderConfig.provider == AppTracing.provider,
    )
    .limit(1)
    .scalar_subquery(),
).where(AppTracing.app_id == bindparam("app_id"))


def recording_settings(session: Session, app_id: str) -> RecordingSettings:
    """Whether and where the app's runs are traced, and the policy applied before storing.

    ``enabled`` is true only when the switch is on and the active provider has a saved
    configuration. No network, no decryption. It runs on the request path of every run, so
    it is one narrow query (the switch, the policy columns and whether a config exists),
    never a load of the encrypted configuration row, on the session's own driver cursor
    (``storage.driver_sql``).
    """
    connection = session.connection()
    statement = driver_statement(_RECORDING_QUERY, connection.dialect)
    with statement.execute(connection, {"app_id": app_id}) as cursor:
        found = cursor.fetchone()
    if found is None:
        return RecordingSettings(enabled=False, provider=None, policy=ContentPolicy())
    enabled, provider, mode, patterns_json, sample_rate, path = found
    policy = ContentPolicy(
        mode=mode,
        mask_patterns=(
            tuple(json.loads(patterns_json)) if patterns_json is not None else DEFAULT_MASK_PATTERNS
        ),
        sample_rate=sample_rate,
    )
    on = bool(enabled and provider is not None and path is not None)
    return RecordingSettings(
        enabled=on,
        provider=provider if on else None,
        policy=policy,
        ingestion_path=path if on else None,
    )


def open_values(config: TracingProviderConfig, keyring: Keyring) -> ProviderValues:
    """Decrypt a stored configuration.

    Raises:
        ConfigError: the secrets cannot be decrypted, or the stored JSON is damaged.
    """
    settings = json.loads(config.settings_json)
    secrets = json.loads(keyring.decrypt(config.secrets_ciphertext))
    if not isinstance(settings, dict) or not isinstance(secrets, dict):
        raise ConfigError(
            f"The stored {config.provider} configuration is damaged.", code="config_damaged"
        )
    return ProviderValues(settings=settings, secrets=secrets)


def stored_project(config: TracingProviderConfig) -> ValidatedProject:
    """What the last validation of this configuration learned."""
    return ValidatedProject(
        project_id=config.project_id,
        project_name=config.project_name,
        project_url=config.project_url,
        server_version=config.server_version,
        ingestion_path=config.ingestion_path or "otlp",
        warning=config.server_warning,
        validated_at=config.validated_at,
    )


def write_config(
    session: Session,
    config: TracingProviderConfig | None,
    *,
    app_id: str,
    provider: str,
    values: ProviderValues,
    project: ValidatedProject,
    keyring: Keyring,
) -> TracingProviderConfig:
    """Create or overwrite a provider configuration: settings as JSON, secrets encrypted."""
    moment = utcnow()
    if config is None:
        config = TracingProviderConfig(
            id=str(uuid.uuid4()), app_id=app_id, provider=provider, created_at=moment
        )
        session.add(config)
    config.settings_json = json.dumps(dict(values.settings), sort_keys=True)
    config.secrets_ciphertext = keyring.encrypt(json.dumps(dict(values.secrets), sort_keys=True))
    config.project_id = project.project_id
    config.project_name = project.project_name
    config.project_url = project.project_url
    config.server_version = project.server_version
    config.ingestion_path = project.ingestion_path
    config.server_warning = project.warning
    config.validated_at = moment
    config.updated_at = moment
    return config


def view_of(
    config: TracingProviderConfig, keyring: Keyring, switch: AppTracing | None
) -> ConfigView:
    """The configuration as users see it: secrets as hints, everything else plain. No network."""
    values = open_values(config, keyring)
    provider = provider_named(config.provider)
    hints = {name: obfuscate(values.secrets.get(name, "")) for name in provider.secret_keys}
    return ConfigView(
        id=config.id,
        app_id=config.app_id,
        provider=config.provider,
        secret_hints=hints,
        settings=dict(values.settings),
        project=stored_project(config),
        validated_at=config.validated_at,
        is_active=bool(switch and switch.enabled and switch.provider == config.provider),
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


def state_of(
    switch: AppTracing | None, has_config: bool, destination_state: str | None
) -> TracingState:
    """The app's tracing state from the switch, the config and the delivery state."""
    if not has_config:
        return "not_configured"
    if switch is None or not switch.enabled:
        return "disabled"
    if destination_state in FAILING_STATES:
        return destination_state  # type: ignore[return-value]
    return "started"


def all_provider_configs(session: Session) -> list[TracingProviderConfig]:
    """Every stored provider configuration (key rotation re-encrypts them all)."""
    return list(session.scalars(select(TracingProviderConfig).order_by(TracingProviderConfig.id)))


def find_app_by_ref(session: Session, ref: str) -> App:
    """The app whose id is ``ref``, or else the only app named ``ref`` (CLI convenience).

    Raises:
        NotFoundError: no app has that id or name (code ``app_not_found``), or several apps
            share the name (code ``app_ambiguous``; use the id).
    """
    if _APP_ID_RE.match(ref):
        app = session.get(App, ref)
        if app is not None:
            return app
    named = list(session.scalars(select(App).where(App.name == ref).order_by(App.created_at)))
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(a.id for a in named)
        raise NotFoundError(
            f"{len(named)} apps are named {ref!r} ({ids}); give the app id.", code="app_ambiguous"
        )
    raise NotFoundError(f"No app has the id or name {ref!r}.", code="app_not_found")

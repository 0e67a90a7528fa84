"""Use cases of per-app tracing configuration, shared by the console API, the CLI and the web.

Each function takes the caller's session and commits it. Network validation (netguard, then
the provider's credential check) happens outside any database transaction, so a slow or dead
host never holds a lock, and a failed validation changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opstrail.config.crypto import Keyring
from opstrail.config.obfuscation import keeps_stored
from opstrail.config.providers import (
    PROVIDERS,
    READ_ONLY_KEYS,
    ProviderValues,
    TracingProvider,
    ValidatedProject,
    provider_named,
)
from opstrail.config.tracing_config import (
    ConfigView,
    TracingState,
    TracingSwitch,
    all_provider_configs,
    find_app,
    load_provider_config,
    load_switch,
    open_values,
    policy_of,
    state_of,
    store_policy,
    switch_of,
    switch_row,
    view_of,
    write_config,
)
from opstrail.delivery.outbox import cancel_pending
from opstrail.errors import ConfigError, ConflictError, NotFoundError, TracingConfigError
from opstrail.exporters.transport import guarded_client, rules_from_settings
from opstrail.services.delivery_status import delivery_status
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.tables.tracing import AppTracing, TracingProviderConfig
from opstrail.tracing.policy import ContentPolicy

# Validation talks to a user-given host: keep it short, and never follow a redirect (it could
# lead to an address netguard refused).
PROBE_TIMEOUT_SECONDS: Final = 5.0

ClientFactory = Callable[[], httpx.Client]


def probe_client_factory(settings: Settings) -> ClientFactory:
    """A factory of short-timeout HTTP clients for credential checks (one per check)."""
    timeout = min(PROBE_TIMEOUT_SECONDS, settings.http_timeout_seconds)
    rules = rules_from_settings(settings)

    def make() -> httpx.Client:
        # The address connected to is checked too, not only the name's answer at save time.
        return guarded_client(rules, timeout=httpx.Timeout(timeout))

    return make


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """A change of the content policy; ``None`` fields keep their current value."""

    content_mode: str | None = None
    mask_patterns: Sequence[str] | None = None
    sample_rate: float | None = None

    def merged_onto(self, current: ContentPolicy) -> ContentPolicy:
        """The policy after this change.

        Raises:
            ValidationError: code ``invalid_policy``.
        """
        return ContentPolicy(
            mode=self.content_mode if self.content_mode is not None else current.mode,  # type: ignore[arg-type]
            mask_patterns=(
                tuple(self.mask_patterns)
                if self.mask_patterns is not None
                else current.mask_patterns
            ),
            sample_rate=self.sample_rate if self.sample_rate is not None else current.sample_rate,
        )


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What removing a configuration did."""

    disabled: bool
    cancelled_rows: int


@dataclass(frozen=True, slots=True)
class TracingStatus:
    """An app's tracing state with delivery counts (traces, i.e. outbox rows)."""

    app_id: str
    state: TracingState
    enabled: bool
    provider: str | None
    delivered: int
    pending: int
    retrying: int
    dead: int
    last_success_at: datetime | None
    last_error_code: str | None
    last_error_message: str | None
    server_version: str | None
    ingestion_path: str | None
    project_url: str | None
    server_warning: str | None
    validated_at: datetime | None


# --- the switch -------------------------------------------------------------------------------


def get_switch(session: Session, *, tenant_id: str | None, app_id: str) -> TracingSwitch:
    """``{"enabled", "tracing_provider"}`` of an app.

    Raises:
        NotFoundError: unknown app.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    return switch_of(load_switch(session, app_id))


def set_switch(
    session: Session,
    *,
    tenant_id: str | None,
    app_id: str,
    enabled: bool,
    provider: str | None,
) -> TracingSwitch:
    """Turn tracing on or off. Turning it on needs a saved configuration of the provider.

    With ``provider`` omitted, enabling uses the app's current provider, or its only
    configured one.

    Raises:
        NotFoundError: unknown app.
        ValidationError: unknown provider (``invalid_tracing_provider``).
        ConflictError: code ``trace_config_not_exist`` when enabling without a saved config.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    if provider is not None:
        provider_named(provider)
    row = switch_row(session, app_id)
    if enabled:
        chosen = provider or row.provider or _only_configured(session, app_id)
        if chosen is None or load_provider_config(session, app_id, chosen) is None:
            session.rollback()
            raise ConflictError(
                "Configure the tracing provider before enabling tracing "
                f"(no saved {chosen or 'provider'} configuration for this app).",
                code="trace_config_not_exist",
            )
        row.provider = chosen
    else:
        row.provider = provider
    row.enabled = enabled
    row.updated_at = utcnow()
    result = switch_of(row)
    session.commit()
    return result


def _only_configured(session: Session, app_id: str) -> str | None:
    found = [name for name in PROVIDERS if load_provider_config(session, app_id, name)]
    return found[0] if len(found) == 1 else None


# --- provider configurations ------------------------------------------------------------------


def get_config(
    session: Session,
    keyring: Keyring,
    *,
    tenant_id: str | None,
    app_id: str,
    provider: str | None,
) -> ConfigView | None:
    """The saved configuration, secrets as hints; ``None`` when none is saved. No network.

    ``provider`` defaults to the app's active provider, else Langfuse.

    Raises:
        NotFoundError: unknown app.
        ValidationError: unknown provider.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    switch = load_switch(session, app_id)
    name = _chosen_provider(provider, switch).name
    config = load_provider_config(session, app_id, name)
    return None if config is None else view_of(config, keyring, switch)


def create_config(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    *,
    tenant_id: str | None,
    app_id: str,
    provider: str,
    values: Mapping[str, object],
    policy: PolicyInput | None = None,
    client_factory: ClientFactory | None = None,
) -> ConfigView:
    """Validate and save a new provider configuration (secrets encrypted).

    Raises:
        NotFoundError: unknown app.
        ConflictError: code ``trace_config_is_exist`` when one is already saved.
        ValidationError: a malformed field or policy.
        TracingConfigError: the host or the credentials were refused (with the reason's code).
    """
    spec = provider_named(provider)
    find_app(session, app_id, tenant_id=tenant_id)
    if load_provider_config(session, app_id, spec.name) is not None:
        raise _exists(spec)
    new_policy = policy.merged_onto(policy_of(load_switch(session, app_id))) if policy else None
    session.commit()  # end the read transaction before talking to the network
    parsed = spec.parse(values, settings=settings)
    project = _check(spec, parsed, settings, client_factory)
    if load_provider_config(session, app_id, spec.name) is not None:
        raise _exists(spec)  # saved by someone else while we were checking
    config = write_config(
        session,
        None,
        app_id=app_id,
        provider=spec.name,
        values=parsed,
        project=project,
        keyring=keyring,
    )
    if new_policy is not None:
        store_policy(switch_row(session, app_id), new_policy)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _exists(spec) from None
    return view_of(config, keyring, load_switch(session, app_id))


def update_config(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    *,
    tenant_id: str | None,
    app_id: str,
    provider: str,
    values: Mapping[str, object] | None,
    policy: PolicyInput | None = None,
    client_factory: ClientFactory | None = None,
) -> ConfigView:
    """Change a saved configuration. A secret that is absent, null or exactly the hint shown
    keeps its stored value; any other value replaces it. A changed host or key is validated
    again; a failed validation changes nothing.

    Raises:
        NotFoundError: unknown app, or code ``trace_config_not_exist`` when none is saved.
        ValidationError, TracingConfigError: as ``create_config``.
    """
    spec = provider_named(provider)
    find_app(session, app_id, tenant_id=tenant_id)
    config = load_provider_config(session, app_id, spec.name)
    if config is None:
        raise _missing(spec)
    new_policy = policy.merged_onto(policy_of(load_switch(session, app_id))) if policy else None
    stored = open_values(config, keyring)
    merged = _merge(spec, stored, values or {})
    changed = merged != {**stored.settings, **stored.secrets}
    session.commit()  # end the read transaction before talking to the network
    if changed:
        parsed = spec.parse(merged, settings=settings)
        project = _check(spec, parsed, settings, client_factory)
        config = load_provider_config(session, app_id, spec.name)
        if config is None:
            raise _missing(spec)  # removed while we were checking
        write_config(
            session,
            config,
            app_id=app_id,
            provider=spec.name,
            values=parsed,
            project=project,
            keyring=keyring,
        )
    if new_policy is not None:
        store_policy(switch_row(session, app_id), new_policy)
    session.commit()
    return view_of(config, keyring, load_switch(session, app_id))


def recheck_config(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    *,
    tenant_id: str | None,
    app_id: str,
    provider: str | None,
    client_factory: ClientFactory | None = None,
) -> ConfigView:
    """Validate the saved configuration again and store what the server says now (project,
    version, ingestion path). For a "test connection" button and the daily re-probe.

    Raises:
        NotFoundError: unknown app, or code ``trace_config_not_exist``.
        TracingConfigError: the check failed now (the stored config is left as it was).
    """
    find_app(session, app_id, tenant_id=tenant_id)
    switch = load_switch(session, app_id)
    spec = _chosen_provider(provider, switch)
    config = load_provider_config(session, app_id, spec.name)
    if config is None:
        raise _missing(spec)
    values = open_values(config, keyring)
    session.commit()  # end the read transaction before talking to the network
    parsed = spec.parse({**values.settings, **values.secrets}, settings=settings)
    project = _check(spec, parsed, settings, client_factory)
    config = load_provider_config(session, app_id, spec.name)
    if config is None:
        raise _missing(spec)
    write_config(
        session,
        config,
        app_id=app_id,
        provider=spec.name,
        values=parsed,
        project=project,
        keyring=keyring,
    )
    session.commit()
    return view_of(config, keyring, load_switch(session, app_id))


def delete_config(
    session: Session, *, tenant_id: str | None, app_id: str, provider: str | None
) -> DeleteResult:
    """Remove a saved configuration. Removing the active provider's configuration also turns
    tracing off and cancels the app's rows waiting for delivery (kept for ``opstrail export``).

    Raises:
        NotFoundError: unknown app, or code ``trace_config_not_exist`` when none is saved.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    switch = load_switch(session, app_id)
    spec = _chosen_provider(provider, switch)
    config = load_provider_config(session, app_id, spec.name)
    if config is None:
        raise _missing(spec)
    session.delete(config)
    disabled = False
    cancelled = 0
    if switch is not None and switch.provider == spec.name:
        disabled = switch.enabled
        switch.enabled = False
        switch.provider = None
        switch.updated_at = utcnow()
        cancelled = cancel_pending(session, app_id)
    session.commit()
    return DeleteResult(disabled=disabled, cancelled_rows=cancelled)


# --- policy -----------------------------------------------------------------------------------


def get_policy(session: Session, *, tenant_id: str | None, app_id: str) -> ContentPolicy:
    """The app's content policy and sampling rate.

    Raises:
        NotFoundError: unknown app.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    return policy_of(load_switch(session, app_id))


def set_policy(
    session: Session, *, tenant_id: str | None, app_id: str, change: PolicyInput
) -> ContentPolicy:
    """Change the app's content policy; it applies to runs recorded from now on.

    Raises:
        NotFoundError: unknown app.
        ValidationError: code ``invalid_policy``.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    policy = change.merged_onto(policy_of(load_switch(session, app_id)))
    store_policy(switch_row(session, app_id), policy)
    session.commit()
    return policy


# --- status -----------------------------------------------------------------------------------


def tracing_status(session: Session, *, tenant_id: str | None, app_id: str) -> TracingStatus:
    """The app's tracing state and delivery counts. No network.

    Raises:
        NotFoundError: unknown app.
    """
    find_app(session, app_id, tenant_id=tenant_id)
    switch = load_switch(session, app_id)
    name = switch.provider if switch and switch.provider else _only_configured(session, app_id)
    config = load_provider_config(session, app_id, name) if name else None
    delivery = delivery_status(session, app_id)
    # What the dispatcher learnt about an older destination (before the config changed)
    # says nothing about the current one.
    current = delivery.destination_key is None or (
        config is not None and delivery.destination_key == _destination_key(config)
    )
    state = state_of(switch, config is not None, delivery.state if current else None)
    return TracingStatus(
        app_id=app_id,
        state=state,
        enabled=bool(switch and switch.enabled),
        provider=switch.provider if switch else None,
        delivered=delivery.delivered,
        pending=delivery.pending,
        retrying=delivery.retrying,
        dead=delivery.dead,
        last_success_at=delivery.last_success_at,
        last_error_code=delivery.last_error_code,
        last_error_message=delivery.last_error_message,
        server_version=(delivery.server_version if current else None)
        or (config.server_version if config else None),
        ingestion_path=(delivery.path if current else None)
        or (config.ingestion_path if config else None),
        project_url=config.project_url if config else None,
        server_warning=config.server_warning if config else None,
        validated_at=config.validated_at if config else None,
    )


# --- helpers ----------------------------------------------------------------------------------


def _destination_key(config: TracingProviderConfig) -> str:
    """The key the dispatcher records for this configuration's destination (host + project)."""
    settings = json.loads(config.settings_json)
    host = settings.get("host") if isinstance(settings, dict) else None
    return f"{host}#{config.project_id}"


def _merge(
    spec: TracingProvider, stored: ProviderValues, submitted: Mapping[str, object]
) -> dict[str, object]:
    merged: dict[str, object] = {**stored.settings, **stored.secrets}
    for key, value in submitted.items():
        if key in READ_ONLY_KEYS:
            continue  # echoed back from a GET; never stored
        if key in spec.secret_keys:
            if not keeps_stored(value, stored.secrets.get(key, "")):
                merged[key] = value
        elif key == "host" and value is None:
            continue  # null host: keep the stored one
        else:
            merged[key] = value
    return merged


def _check(
    spec: TracingProvider,
    values: ProviderValues,
    settings: Settings,
    client_factory: ClientFactory | None,
) -> ValidatedProject:
    make = client_factory or probe_client_factory(settings)
    with make() as client:
        try:
            return spec.check(values, client=client)
        except httpx.HTTPError as exc:
            # The check function should have translated this; never let it become a 500.
            raise TracingConfigError(
                f"The host could not be reached: {type(exc).__name__}.", code="host_unreachable"
            ) from None


def _chosen_provider(provider: str | None, switch: AppTracing | None) -> TracingProvider:
    # A request that names no provider means the app's active one, else Langfuse.
    return provider_named(provider or (switch.provider if switch else None) or "langfuse")


def _exists(spec: TracingProvider) -> ConflictError:
    return ConflictError(
        f"A {spec.title} configuration already exists for this app; change it with PATCH.",
        code="trace_config_is_exist",
    )


def _missing(spec: TracingProvider) -> NotFoundError:
    return NotFoundError(
        f"No {spec.title} configuration is saved for this app.", code="trace_config_not_exist"
    )


# --- key rotation -----------------------------------------------------------------------------


def reencrypt_secrets(session: Session, keyring: Keyring) -> int:
    """Re-encrypt every stored secret with the keyring's first key, in one transaction.

    Returns:
        How many configurations were re-encrypted.

    Raises:
        ConfigError: a stored secret cannot be decrypted with any key (nothing is changed).
    """
    configs = all_provider_configs(session)
    try:
        for config in configs:
            config.secrets_ciphertext = keyring.rotate(config.secrets_ciphertext)
    except ConfigError:
        session.rollback()
        raise
    session.commit()
    return len(configs)

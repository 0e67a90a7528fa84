"""Helpers of the delivery tests: apps with a real saved tracing configuration, recorded
traces, a dispatcher wired like the server's, and outbox reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from opstrail.config.crypto import Keyring
from opstrail.config.destinations import ConfigDestinationResolver
from opstrail.config.providers import provider_named
from opstrail.config.tracing_config import load_provider_config, stored_project, write_config
from opstrail.delivery.dispatcher import Dispatcher
from opstrail.delivery.metrics import DeliveryMetrics
from opstrail.delivery.policy import RetrySchedule
from opstrail.exporters.registry import exporter_for
from opstrail.services import tracing_settings
from opstrail.services.bootstrap import build_dispatcher, dispatch_options
from opstrail.services.trace_recording import record_trace
from opstrail.settings import Settings
from opstrail.storage.tables.apps import App
from opstrail.storage.tables.outbox import OutboxRow, OutboxWire
from opstrail.storage.tenancy import ensure_default_tenant
from opstrail.tracing import samples
from opstrail.tracing.build import build_score
from opstrail.tracing.info import RootTraceInfo, RunContext
from opstrail.tracing.tree import Trace

PUBLIC_KEY = "pk-lf-test"
SECRET_KEY = "sk-lf-test"


def create_app(session_factory: sessionmaker[Session]) -> str:
    """An app row in the default workspace; returns its id."""
    with session_factory() as session:
        tenant_id, _account = ensure_default_tenant(session)
        app_id = str(uuid.uuid4())
        session.add(App(id=app_id, tenant_id=tenant_id, name="app", mode="chat", dsl=""))
        session.commit()
    return app_id


def configure_tracing(
    session_factory: sessionmaker[Session],
    settings: Settings,
    app_id: str,
    host: str,
    *,
    public_key: str = PUBLIC_KEY,
    secret_key: str = SECRET_KEY,
    ingestion_path: str | None = None,
) -> None:
    """Save and enable a validated Langfuse configuration (checked against ``host``)."""
    values: dict[str, object] = {"public_key": public_key, "secret_key": secret_key, "host": host}
    if ingestion_path:
        values["ingestion_path"] = ingestion_path
    with session_factory() as session:
        tracing_settings.create_config(
            session, settings, Keyring.from_settings(settings), tenant_id=None, app_id=app_id,
            provider="langfuse", values=values,
        )
        tracing_settings.set_switch(
            session, tenant_id=None, app_id=app_id, enabled=True, provider="langfuse"
        )


def fix_keys(
    session_factory: sessionmaker[Session], settings: Settings, app_id: str, secret_key: str
) -> None:
    """Replace the secret key through the console use case (validated, as a user would)."""
    with session_factory() as session:
        tracing_settings.update_config(
            session, settings, Keyring.from_settings(settings), tenant_id=None, app_id=app_id,
            provider="langfuse", values={"secret_key": secret_key},
        )


def revoke_keys(
    session_factory: sessionmaker[Session], settings: Settings, app_id: str
) -> None:
    """Store a secret the destination does not know, as if the key had been revoked in
    Langfuse after it was saved (no validation: Langfuse changed, not the config)."""
    keyring = Keyring.from_settings(settings)
    with session_factory() as session:
        config = load_provider_config(session, app_id, "langfuse")
        assert config is not None
        spec = provider_named("langfuse")
        stored = tracing_settings.open_values(config, keyring)
        parsed = spec.parse(
            {**stored.settings, **stored.secrets, "secret_key": "sk-lf-revoked"}, settings=settings
        )
        write_config(
            session, config, app_id=app_id, provider="langfuse", values=parsed,
            project=stored_project(config), keyring=keyring,
        )
        session.commit()


def context(app_id: str) -> RunContext:
    return replace(samples.run_context(), app_id=app_id)


def message_for(app_id: str, n: int = 0, **kwargs: Any) -> RootTraceInfo:
    """A distinct chat message of ``app_id`` (5 observations)."""
    return samples.chat_message(
        message_id=str(uuid.uuid4()), context=context(app_id), **kwargs
    )


def workflow_for(app_id: str, n_nodes: int = 5) -> RootTraceInfo:
    """A distinct workflow run of ``app_id`` (``n_nodes + 1`` observations)."""
    return samples.workflow_run(
        n_nodes, workflow_run_id=str(uuid.uuid4()), context=context(app_id)
    )


def record(
    session_factory: sessionmaker[Session], settings: Settings, infos: Sequence[RootTraceInfo]
) -> None:
    """Record ``infos`` in one transaction, as a run would."""
    with session_factory() as session:
        for info in infos:
            record_trace(session, settings, info)
        session.commit()


def rewrite_wire(
    session_factory: sessionmaker[Session], trace_id: str, change: Callable[[bytes], bytes]
) -> None:
    """Replace the stored wire body of ``trace_id`` by ``change(body)`` (a fault in tests)."""
    with session_factory() as session:
        row = session.scalars(select(OutboxRow).where(OutboxRow.trace_id == trace_id)).one()
        wire = session.get(OutboxWire, row.id)
        assert wire is not None, "the trace has no stored wire body"
        wire.body = change(wire.body)
        session.commit()


def dispatcher(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    metrics: DeliveryMetrics | None = None,
    build_trace: Callable[[RootTraceInfo], Trace] | None = None,
    **overrides: Any,
) -> Dispatcher:
    """A dispatcher wired as in the server (real resolver, exporters and builder); fast
    retries unless overridden; ``build_trace`` replaces the builder (poison traces)."""
    overrides.setdefault("schedule", RetrySchedule(0.05, 0.2))
    overrides.setdefault("resume_check_seconds", 0.0)
    options = dispatch_options(settings, **overrides)
    if build_trace is None:
        return build_dispatcher(settings, session_factory, metrics=metrics, options=options)
    return Dispatcher(
        session_factory,
        ConfigDestinationResolver(settings),
        exporter_for,
        build_trace=build_trace,
        build_score=build_score,
        options=options,
        metrics=metrics,
    )


def drain(d: Dispatcher, *, until: Any = None, cycles: int = 200, pause: float = 0.05) -> None:
    """Run cycles until ``until()`` holds (or nothing is due, without ``until``)."""
    import time

    for _ in range(cycles):
        done = d.run_once()
        if until is not None:
            if until():
                return
            if not done:
                time.sleep(pause)
        elif not done:
            return
    raise AssertionError("dispatcher did not reach the expected state")


def rows(session_factory: sessionmaker[Session]) -> list[OutboxRow]:
    with session_factory() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id).options(selectinload(OutboxRow.payload_row))))


def wire_bodies(session_factory: sessionmaker[Session]) -> dict[str, OutboxWire]:
    """Stored wire bodies by trace id."""
    with session_factory() as session:
        found = session.execute(
            select(OutboxRow.trace_id, OutboxWire).join(
                OutboxWire, OutboxWire.outbox_id == OutboxRow.id
            )
        )
        return {trace_id: wire for trace_id, wire in found}


def states(session_factory: sessionmaker[Session]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows(session_factory):
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms until it holds; ``TimeoutError`` after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition still false after the timeout")
        time.sleep(0.01)

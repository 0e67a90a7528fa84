"""Startup and shutdown of what the server owns: engine, schema, default tenant, metrics
registry and (unless turned off) the embedded dispatcher."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from opstrail.delivery.dispatcher import SQLITE_LEASE, Dispatcher, DispatchOptions
from opstrail.delivery.metrics import DeliveryMetrics, OutboxCollector
from opstrail.delivery.worker import DispatcherThread
from opstrail.errors import DeliveryError
from opstrail.exporters.base import Destination, IngestionPath
from opstrail.services.trace_recording import build_options
from opstrail.services.wire_encoding import WireEncoder, attach
from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema
from opstrail.storage.tenancy import ensure_default_tenant

log = logging.getLogger(__name__)


def dispatch_options(settings: Settings, **overrides: Any) -> DispatchOptions:
    """The dispatcher options of a deployment (``overrides``: CLI flags, tests)."""
    max_age = timedelta(days=settings.max_row_age_days)
    options = DispatchOptions(
        batch_size=settings.dispatch_batch_size,
        cycles_in_flight=settings.dispatch_cycles,
        linger=settings.dispatch_linger,
        poll_interval=settings.dispatch_poll_interval,
        lease_seconds=settings.dispatch_lease_seconds,
        max_row_age=max_age,
        retention=timedelta(days=settings.retention_days),
        # Apply the age limit at least ten times per limit (every minute for days-long ones).
        maintenance_seconds=min(60.0, max(0.5, max_age.total_seconds() / 10)),
        single_lease=SQLITE_LEASE if settings.is_sqlite else None,
    )
    return replace(options, **overrides) if overrides else options


def build_dispatcher(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    metrics: DeliveryMetrics | None = None,
    options: DispatchOptions | None = None,
) -> Dispatcher:
    """A dispatcher wired to the stored tracing configuration, the real exporters and the
    trace builder with the deployment's build options."""
    from opstrail.config.destinations import ConfigDestinationResolver
    from opstrail.exporters.registry import exporter_for
    from opstrail.exporters.transport import rules_from_settings
    from opstrail.tracing.build import build_score, build_trace

    trace_options = build_options(settings)
    # Every connection to a destination is checked against the deployment's host rules at
    # send time too (a name may resolve elsewhere than when it was saved).
    rules = rules_from_settings(settings)
    return Dispatcher(
        session_factory,
        ConfigDestinationResolver(settings),
        lambda destination: exporter_for(
            destination, timeout=settings.http_timeout_seconds, rules=rules
        ),
        build_trace=lambda info: build_trace(info, trace_options),
        build_score=lambda feedback: build_score(feedback, trace_options),
        options=options or dispatch_options(settings),
        metrics=metrics,
        probe_path=lambda destination: _probe_path(destination, settings),
    )


def _probe_path(destination: Destination, settings: Settings) -> IngestionPath:
    """The path the destination's server takes now (``GET /api/public/health``); a fresh
    client per probe, since a destination is probed at most once a day."""
    from opstrail.exporters.probe import probe_server
    from opstrail.exporters.transport import guarded_client, rules_from_settings

    rules = rules_from_settings(settings)
    with guarded_client(rules, timeout=min(settings.http_timeout_seconds, 5.0)) as client:
        server = probe_server(destination.host, client=client)
    if server.warning is not None:
        # Unreachable, or no readable version: that says nothing about the path. Keep the
        # current one (the dispatcher retries the probe later).
        raise DeliveryError(server.warning, code="probe_inconclusive")
    return server.path


def metrics_registry(session_factory: sessionmaker[Session]) -> CollectorRegistry:
    """A fresh registry with the outbox collector (per app instance, never the global one)."""
    registry = CollectorRegistry()
    registry.register(OutboxCollector(session_factory))
    return registry


def start_services(app: Any, settings: Settings) -> None:
    """Build the engine and session factory, bring the schema up to date, make sure the
    default tenant and account exist, and put them on ``app.state``; then the metrics
    registry and, when ``settings.embedded_dispatcher``, the dispatcher thread."""
    engine = make_engine(settings)
    ensure_schema(engine)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.wire_encoder = None
    if settings.encode_at_record:
        # Runs record trace info in their transaction; this thread encodes it after the
        # commit, off the request path (services.wire_encoding).
        encoder = WireEncoder(app.state.session_factory, build_options(settings))
        attach(app.state.session_factory, encoder)
        encoder.start()
        app.state.wire_encoder = encoder
    with app.state.session_factory() as session:
        app.state.tenant_id, app.state.account_id = ensure_default_tenant(session)
        session.commit()
    registry = metrics_registry(app.state.session_factory)
    app.state.metrics_registry = registry
    app.state.delivery_metrics = DeliveryMetrics(registry)
    app.state.dispatcher = None
    if settings.embedded_dispatcher:
        app.state.dispatcher = _start_embedded(app, settings)


def _start_embedded(app: Any, settings: Settings) -> DispatcherThread | None:
    dispatcher = build_dispatcher(
        settings, app.state.session_factory, metrics=app.state.delivery_metrics
    )
    thread = DispatcherThread(dispatcher)
    try:
        thread.start()
    except DeliveryError as exc:
        # Another dispatcher (an `opstrail worker`) already delivers from this database: the
        # server still serves, and traces are still delivered, by that one.
        log.error("embedded dispatcher not started: %s", exc)
        return None
    return thread


def stop_services(app: Any) -> None:
    """Stop the dispatcher (bounded: rows in flight are released), dispose of the engine."""
    thread: DispatcherThread | None = getattr(app.state, "dispatcher", None)
    if thread is not None:
        thread.stop(grace=5.0)
        app.state.dispatcher = None
    encoder: WireEncoder | None = getattr(app.state, "wire_encoder", None)
    if encoder is not None:
        encoder.stop(grace=2.0)
        app.state.wire_encoder = None
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()

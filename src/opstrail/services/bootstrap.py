"""Startup and shutdown of what the server owns: engine, schema, default tenant."""

from __future__ import annotations

from typing import Any

from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema
from opstrail.storage.tenancy import ensure_default_tenant


def start_services(app: Any, settings: Settings) -> None:
    """Build the engine and session factory, bring the schema up to date, make sure the
    default tenant and account exist, and put them on ``app.state``."""
    engine = make_engine(settings)
    ensure_schema(engine)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    with app.state.session_factory() as session:
        app.state.tenant_id, app.state.account_id = ensure_default_tenant(session)
        session.commit()


def stop_services(app: Any) -> None:
    """Dispose of the engine."""
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()

"""Switching tracing off stops delivery of what was waiting; nothing is lost."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from opstrail.collector.testing import running_collector
from opstrail.services import tracing_settings
from opstrail.services.export import start_export
from opstrail.settings import Settings

from . import helpers


def test_disabling_tracing_keeps_waiting_rows_from_being_sent_and_export_can_send_them(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Rows recorded while tracing was on but not yet delivered are not sent after the
    switch goes off (they become unrouted, payload kept); after switching on again,
    `opstrail export` delivers them."""
    with running_collector() as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
        helpers.record(session_factory, settings, [helpers.message_for(app_id, n) for n in range(2)])
        with session_factory() as session:
            tracing_settings.set_switch(session, tenant_id=None, app_id=app_id, enabled=False,
                                        provider=None)
        dispatcher = helpers.dispatcher(settings, session_factory)
        helpers.drain(dispatcher)
        assert helpers.states(session_factory) == {"unrouted": 2}
        assert collector.trace_ids() == set()

        with session_factory() as session:
            tracing_settings.set_switch(session, tenant_id=None, app_id=app_id, enabled=True,
                                        provider=None)
            plan = start_export(session, settings, app_id=app_id)
        assert len(plan.row_ids) == 2
        helpers.drain(dispatcher)
        dispatcher.close()
        assert helpers.states(session_factory) == {"delivered": 2}
        assert len(collector.trace_ids()) == 2

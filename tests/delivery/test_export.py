"""Backfill with ``opstrail export``: only what the current destination has not acknowledged,
unless --force (which warns about duplicates on Langfuse v4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from opstrail.cli.main import build_app
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.config.crypto import Keyring
from opstrail.services import tracing_settings
from opstrail.services.export import export_progress, start_export
from opstrail.settings import Settings
from opstrail.tracing.build import build_trace

from . import helpers
from .workers import worker_env


@pytest.fixture(name="collector")
def _collector() -> Iterator[CollectorHandle]:
    with running_collector() as handle:
        yield handle


def _move_to(
    session_factory: sessionmaker[Session], settings: Settings, app_id: str, host: str
) -> None:
    with session_factory() as session:
        tracing_settings.update_config(
            session, settings, Keyring.from_settings(settings), tenant_id=None, app_id=app_id,
            provider="langfuse", values={"host": host},
        )


def test_export_sends_only_unacknowledged_traces_when_destination_changed(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """After a move to a new destination, export sends every stored trace there once; a
    second export finds nothing left to send."""
    app_id = helpers.create_app(session_factory)
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    infos = [helpers.message_for(app_id) for _ in range(3)]
    helpers.record(session_factory, settings, infos)
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    with running_collector() as second:
        _move_to(session_factory, settings, app_id, second.url)
        with session_factory() as session:
            plan = start_export(session, settings, app_id=app_id)
        assert (len(plan.row_ids), plan.skipped_acknowledged) == (3, 0)
        assert plan.destination_key == f"{second.url}#proj-test"
        helpers.drain(dispatcher)
        with session_factory() as session:
            assert export_progress(session, plan.row_ids).delivered == 3
            again = start_export(session, settings, app_id=app_id)
        assert (len(again.row_ids), again.skipped_acknowledged) == (0, 3)
        assert {o["traceId"] for o in second.observations()} == {build_trace(i).id for i in infos}
        assert second.duplicates() == []
    dispatcher.close()
    assert len(collector.traces()) == 3  # the first destination got each trace once


def test_export_sends_traces_recorded_while_tracing_was_off(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Traces recorded before tracing was enabled are kept unrouted and exported on demand."""
    app_id = helpers.create_app(session_factory)
    infos = [helpers.workflow_for(app_id) for _ in range(2)]
    helpers.record(session_factory, settings, infos)
    assert helpers.states(session_factory) == {"unrouted": 2}
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    dispatcher = helpers.dispatcher(settings, session_factory)
    assert dispatcher.run_once() == 0  # the dispatcher never sends unrouted rows by itself
    with session_factory() as session:
        plan = start_export(session, settings, app_id=app_id)
    helpers.drain(dispatcher)
    dispatcher.close()
    assert len(plan.row_ids) == 2
    assert helpers.states(session_factory) == {"delivered": 2}
    assert {t["id"] for t in collector.traces()} == {build_trace(i).id for i in infos}


def test_export_cli_force_warns_and_resends_when_already_acknowledged(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """`opstrail export --force` warns about v4 duplicates and sends acknowledged traces again."""
    app_id = helpers.create_app(session_factory)
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    info = helpers.message_for(app_id)
    helpers.record(session_factory, settings, [info])
    dispatcher = helpers.dispatcher(settings, session_factory)
    helpers.drain(dispatcher)
    dispatcher.close()
    runner = CliRunner()
    env = worker_env(settings)
    plain = runner.invoke(build_app(), ["export", "--app", app_id], env=env)
    assert plain.exit_code == 0, plain.output
    assert "0 trace(s) queued" in plain.output
    forced = runner.invoke(build_app(), ["export", "--app", app_id, "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    assert "duplicates" in forced.output and "1 trace(s) delivered" in forced.output
    assert [d.copies for d in collector.duplicates()] == [2] * len(build_trace(info).observations)


def test_export_cli_refuses_when_tracing_not_enabled(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Exporting an app without an enabled destination fails with a clear message."""
    app_id = helpers.create_app(session_factory)
    result = CliRunner().invoke(build_app(), ["export", "--app", app_id], env=worker_env(settings))
    assert result.exit_code == 2
    assert "not configured or not enabled" in result.output


def test_export_gives_dead_rows_a_fresh_age_window_when_requeued(
    collector: CollectorHandle, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Rows dead-lettered by the age limit are re-sent by an export and are not expired again
    before they are tried (the age counts from when they were queued)."""
    from datetime import UTC, datetime, timedelta

    from opstrail.delivery.outbox import enqueue_trace

    app_id = helpers.create_app(session_factory)
    helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    info = helpers.message_for(app_id)
    with session_factory() as session:
        enqueue_trace(session, info, now=datetime.now(UTC) - timedelta(days=8))
        session.commit()
    dispatcher = helpers.dispatcher(settings, session_factory)
    assert dispatcher.maintain()[0] == 1
    with session_factory() as session:
        plan = start_export(session, settings, app_id=app_id)
    assert dispatcher.maintain()[0] == 0
    helpers.drain(dispatcher)
    dispatcher.close()
    assert len(plan.row_ids) == 1
    assert helpers.states(session_factory) == {"delivered": 1}
    assert {t["id"] for t in collector.traces()} == {build_trace(info).id}

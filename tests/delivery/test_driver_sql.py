"""The request path's statements on the driver's cursor (``storage.driver_sql``) store and read
exactly what SQLAlchemy's own execution would, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.orm import Session, sessionmaker

from opstrail.config.tracing_config import recording_settings
from opstrail.delivery.outbox import enqueue_trace
from opstrail.settings import Settings
from opstrail.storage.driver_sql import driver_statement
from opstrail.storage.tables.outbox import OutboxPayload, OutboxRow
from opstrail.tracing.policy import root_trace_id

from . import helpers

MOMENT = datetime(2026, 11, 28, 5, 6, 7, 891011, tzinfo=UTC)


def test_an_outbox_row_written_on_the_driver_cursor_equals_one_written_by_the_orm(
    backend_database: tuple[Settings, sessionmaker[Session], Engine],
) -> None:
    """Same stored values, down to the text SQLite keeps for a timestamp, and the same id
    sequence."""
    _settings, sessions, _engine = backend_database
    app_id = helpers.create_app(sessions)
    info = helpers.message_for(app_id)
    with sessions() as session:
        driver_id = enqueue_trace(session, info, now=MOMENT)
        orm = OutboxRow(
            app_id=app_id, kind="message", trace_id="0" * 32, payload_bytes=2,
            state="pending", attempts=0, next_attempt_at=MOMENT, created_at=MOMENT,
            queued_at=MOMENT, updated_at=MOMENT,
        )
        session.add(orm)
        session.flush()
        session.add(OutboxPayload(outbox_id=orm.id, payload="{}"))
        session.commit()
        assert orm.id == driver_id + 1
        stored = {
            row_id: (created, next_attempt)
            for row_id, created, next_attempt in session.execute(
                text("SELECT id, created_at, next_attempt_at FROM outbox ORDER BY id")
            )
        }
        assert stored[driver_id] == stored[orm.id]
        row = session.get(OutboxRow, driver_id)
    assert row is not None
    assert (row.created_at, row.queued_at, row.updated_at) == (MOMENT, MOMENT, MOMENT)
    assert (row.trace_id, row.state, row.attempts) == (root_trace_id(info), "pending", 0)


def test_a_moment_in_another_zone_is_stored_as_utc(
    backend_database: tuple[Settings, sessionmaker[Session], Engine],
) -> None:
    """The UTC column's own bind processing runs on the driver path too."""
    _settings, sessions, _engine = backend_database
    app_id = helpers.create_app(sessions)
    paris = MOMENT.astimezone(timezone(timedelta(hours=1)))
    with sessions() as session:
        row_id = enqueue_trace(session, helpers.message_for(app_id), now=paris)
        session.commit()
        row = session.get(OutboxRow, row_id)
    assert row is not None and row.created_at == MOMENT and row.created_at.tzinfo == UTC


def test_the_recording_lookup_reads_the_saved_switch_and_path(
    backend_database: tuple[Settings, sessionmaker[Session], Engine],
) -> None:
    """Enabled with its path once configured; off for an app without tracing."""
    settings, sessions, _engine = backend_database
    from opstrail.collector.testing import running_collector

    traced, plain = helpers.create_app(sessions), helpers.create_app(sessions)
    with running_collector() as collector:
        helpers.configure_tracing(sessions, settings, traced, collector.url)
    with sessions() as session:
        on = recording_settings(session, traced)
        off = recording_settings(session, plain)
    assert (on.enabled, on.provider, on.ingestion_path) == (True, "langfuse", "otlp")
    assert (on.policy.mode, on.policy.sample_rate) == ("full", 1.0)
    assert (off.enabled, off.provider, off.ingestion_path) == (False, None, None)


def test_literals_of_a_statement_keep_their_values(
    backend_database: tuple[Settings, sessionmaker[Session], Engine],
) -> None:
    """A statement mixing the caller's parameters with literals (a LIMIT, a constant)."""
    _settings, sessions, engine = backend_database
    app_id = helpers.create_app(sessions)
    helpers.record(sessions, _settings, [helpers.message_for(app_id) for _ in range(3)])
    statement = (
        select(OutboxRow.id, OutboxRow.state + "!")
        .where(OutboxRow.app_id == bindparam("app_id"))
        .order_by(OutboxRow.id)
        .limit(2)
    )
    with engine.connect() as connection:
        compiled = driver_statement(statement, connection.dialect)
        with compiled.execute(connection, {"app_id": app_id}) as cursor:
            rows = cursor.fetchall()
    assert [state for _id, state in rows] == ["unrouted!", "unrouted!"]

"""record_trace / record_feedback: one outbox row in the caller's transaction, no network."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from opstrail.delivery import codec
from opstrail.services.trace_recording import record_feedback, record_trace
from opstrail.settings import Settings
from opstrail.storage.tables.outbox import OutboxRow

from . import factories


def _rows(session_factory: sessionmaker[Session]) -> list[OutboxRow]:
    with session_factory() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id).options(selectinload(OutboxRow.payload_row))))


def test_record_trace_writes_row_when_caller_commits(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A committed transaction holds exactly one outbox row whose payload decodes back."""
    info = factories.message()
    with session_factory() as session:
        record_trace(session, settings, info)
        session.commit()
    rows = _rows(session_factory)
    assert len(rows) == 1
    assert rows[0].kind == "message"
    assert rows[0].trace_id == info.message_id.replace("-", "")
    assert rows[0].payload is not None
    assert codec.decode(rows[0].kind, rows[0].payload) == info


def test_record_trace_leaves_nothing_when_caller_rolls_back(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A rolled-back transaction leaves no outbox row behind."""
    with session_factory() as session:
        record_trace(session, settings, factories.workflow())
        session.flush()
        session.rollback()
    assert _rows(session_factory) == []


def test_record_trace_opens_no_socket_when_called(
    settings: Settings, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording a trace and a rating never touches the network."""

    def _refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network used on the request path")

    with session_factory() as session:
        monkeypatch.setattr(socket.socket, "connect", _refuse)
        info = factories.message()
        record_trace(session, settings, info)
        record_feedback(session, settings, factories.feedback(info.message_id))
        session.commit()
        monkeypatch.undo()
    assert [r.kind for r in _rows(session_factory)] == ["message", "score"]


def test_record_feedback_supersedes_waiting_rating_when_rated_again(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A newer rating of the same message cancels the older one still waiting."""
    with session_factory() as session:
        record_feedback(session, settings, factories.feedback("m-1", "like"))
        session.commit()
        record_feedback(session, settings, factories.feedback("m-1", None))
        session.commit()
    rows = _rows(session_factory)
    assert rows[0].state == "cancelled"
    assert rows[1].state in ("pending", "unrouted")
    assert rows[0].score_id == rows[1].score_id


def test_record_trace_writes_pending_row_when_tracing_enabled(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """With tracing configured and on, the row waits for the dispatcher (pending)."""
    from opstrail.collector.testing import running_collector

    from . import helpers

    with running_collector() as collector:
        app_id = helpers.create_app(session_factory)
        helpers.configure_tracing(session_factory, settings, app_id, collector.url)
    helpers.record(session_factory, settings, [helpers.message_for(app_id)])
    assert [r.state for r in _rows(session_factory)] == ["pending"]


def test_record_trace_samples_out_successful_runs_but_keeps_failed_ones(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """At sample rate 0 a successful run writes nothing, a failed run is still recorded, and
    a rating follows its recorded trace."""
    from opstrail.services.tracing_settings import PolicyInput, set_policy
    from opstrail.tracing.info import MessageStatus

    from . import helpers

    app_id = helpers.create_app(session_factory)
    with session_factory() as session:
        set_policy(session, tenant_id=None, app_id=app_id, change=PolicyInput(sample_rate=0.0))
    ok = helpers.message_for(app_id)
    failed = helpers.message_for(app_id, status=MessageStatus.ERROR, error="model timed out")
    helpers.record(session_factory, settings, [ok, failed])
    with session_factory() as session:
        for rated in (ok, failed):
            feedback = factories.feedback(rated.message_id, app_id=app_id)
            record_feedback(session, settings, feedback)
        session.commit()
    rows = _rows(session_factory)
    assert [(r.kind, r.trace_id) for r in rows] == [
        ("message", failed.message_id.replace("-", "")),
        ("score", failed.message_id.replace("-", "")),
    ]

"""Queries over workflow runs, node executions and conversation variables.

Keyword-only functions taking the caller's session; none commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opstrail.storage.base import utcnow
from opstrail.storage.tables.workflows import ConversationVariable, NodeExecutionRow, WorkflowRun


def create_run(session: Session, **fields: Any) -> WorkflowRun:
    """Insert a run row (status ``running``); fields as the table's columns."""
    fields.setdefault("created_at", utcnow())
    run = WorkflowRun(**fields)
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, *, app_id: str, workflow_run_id: str) -> WorkflowRun | None:
    """The run of ``app_id`` with that id, or ``None``."""
    run = session.get(WorkflowRun, workflow_run_id)
    if run is None or run.app_id != app_id:
        return None
    return run


def finish_run(
    session: Session,
    *,
    workflow_run_id: str,
    status: str,
    outputs: Mapping[str, Any],
    error: str | None,
    elapsed_time: float,
    total_tokens: int,
    total_steps: int,
    exceptions_count: int,
    finished_at: datetime,
    message_id: str | None = None,
    conversation_id: str | None = None,
) -> WorkflowRun:
    """Write a run's outcome (the caller adds the node rows in the same transaction)."""
    run = session.get(WorkflowRun, workflow_run_id)
    if run is None:
        raise LookupError(f"workflow run {workflow_run_id} does not exist")
    run.status = status
    run.outputs = dict(outputs)
    run.error = error
    run.elapsed_time = elapsed_time
    run.total_tokens = total_tokens
    run.total_steps = total_steps
    run.exceptions_count = exceptions_count
    run.finished_at = finished_at
    if message_id is not None:
        run.message_id = message_id
    if conversation_id is not None:
        run.conversation_id = conversation_id
    session.flush()
    return run


def add_node_executions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert node execution rows (mappings of the table's columns)."""
    session.add_all(NodeExecutionRow(**dict(row)) for row in rows)
    session.flush()


def node_executions(session: Session, *, workflow_run_id: str) -> list[NodeExecutionRow]:
    """The node executions of a run, in start order."""
    return list(session.scalars(
        select(NodeExecutionRow)
        .where(NodeExecutionRow.workflow_run_id == workflow_run_id)
        .order_by(NodeExecutionRow.index)
    ))


def conversation_variables(session: Session, *, conversation_id: str) -> dict[str, Any]:
    """The stored conversation variables of a chatflow conversation."""
    rows = session.scalars(
        select(ConversationVariable).where(ConversationVariable.conversation_id == conversation_id)
    )
    return {row.name: row.value for row in rows}


def save_conversation_variables(
    session: Session, *, app_id: str, conversation_id: str, values: Mapping[str, Any]
) -> None:
    """Upsert the conversation variables after a turn."""
    existing = {
        row.name: row
        for row in session.scalars(
            select(ConversationVariable).where(
                ConversationVariable.conversation_id == conversation_id)
        )
    }
    now = utcnow()
    for name, value in values.items():
        row = existing.get(name)
        if row is None:
            session.add(ConversationVariable(conversation_id=conversation_id, name=name,
                                             app_id=app_id, value=value, updated_at=now))
        else:
            row.value = value
            row.updated_at = now
    session.flush()

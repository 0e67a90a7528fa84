"""Status to level mapping (decisions.md, "Levels")."""

from __future__ import annotations

import pytest

from opstrail.tracing.info import MessageStatus, NodeStatus, WorkflowRunStatus
from opstrail.tracing.levels import (
    STOPPED_MESSAGE,
    Verdict,
    message_verdict,
    moderation_verdict,
    node_verdict,
    run_verdict,
    worst,
)
from opstrail.tracing.tree import Level


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (NodeStatus.SUCCEEDED, None, Verdict(Level.DEFAULT)),
        (NodeStatus.FAILED, "boom", Verdict(Level.ERROR, "boom")),
        (NodeStatus.EXCEPTION, "handled", Verdict(Level.WARNING, "handled")),
        (NodeStatus.STOPPED, None, Verdict(Level.WARNING, STOPPED_MESSAGE)),
        (
            NodeStatus.RUNNING,
            None,
            Verdict(Level.WARNING, "still running when the trace was recorded"),
        ),
        (NodeStatus.FAILED, "", Verdict(Level.ERROR, "the node failed")),
    ],
    ids=[
        "succeeded-default",
        "failed-error",
        "exception-warning",
        "stopped-warning",
        "running-warning",
        "failed-without-text",
    ],
)
def test_node_verdict_maps_status_to_level(
    status: NodeStatus, error: str | None, expected: Verdict
) -> None:
    """Each node status maps to its level with the node's own message."""
    assert expected == node_verdict(status, error)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (WorkflowRunStatus.SUCCEEDED, "", Level.DEFAULT),
        (WorkflowRunStatus.FAILED, "timeout", Level.ERROR),
        (WorkflowRunStatus.STOPPED, None, Level.WARNING),
        (WorkflowRunStatus.PARTIAL_SUCCEEDED, None, Level.WARNING),
        (WorkflowRunStatus.RUNNING, None, Level.WARNING),
    ],
    ids=[
        "succeeded-default",
        "failed-or-timeout-error",
        "stopped-warning",
        "partial-warning",
        "running-warning",
    ],
)
def test_run_verdict_maps_status_to_level(
    status: WorkflowRunStatus, error: str | None, expected: Level
) -> None:
    """Each run status maps to the root's level."""
    assert expected == run_verdict(status, error, 1).level


def test_run_verdict_explains_partial_success_when_no_error_text() -> None:
    """A partial success names the number of handled node errors."""
    assert "2 node error(s)" in (
        run_verdict(WorkflowRunStatus.PARTIAL_SUCCEEDED, None, 2).status_message or ""
    )


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (MessageStatus.NORMAL, None, Level.DEFAULT),
        (MessageStatus.ERROR, "x", Level.ERROR),
        (MessageStatus.STOPPED, None, Level.WARNING),
        (MessageStatus.NORMAL, "late error", Level.ERROR),
    ],
)
def test_message_verdict_maps_status_to_level(
    status: MessageStatus, error: str | None, expected: Level
) -> None:
    """Message statuses map to the root level; an error text always makes it ERROR."""
    assert expected == message_verdict(status, error).level


def test_moderation_verdict_is_warning_when_flagged_and_error_when_check_failed() -> None:
    """Flagged is WARNING; a failed check is ERROR; a pass is DEFAULT."""
    assert moderation_verdict(True, None, "direct_output", "input").level is Level.WARNING
    assert moderation_verdict(False, "down", "", "input") == Verdict(Level.ERROR, "down")
    assert moderation_verdict(False, None, "", "input").level is Level.DEFAULT


def test_worst_picks_most_severe_level() -> None:
    """worst() orders DEBUG < DEFAULT < WARNING < ERROR and defaults to DEFAULT."""
    assert worst([Level.DEFAULT, Level.ERROR, Level.WARNING]) is Level.ERROR
    assert worst([]) is Level.DEFAULT

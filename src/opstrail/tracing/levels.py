"""Status to Langfuse level and status message, for runs, nodes, messages and checks.

Rules (decisions.md, "Levels"): succeeded is DEFAULT; failed is ERROR; an error handled by a
fail-branch or default-value strategy is WARNING; partial-succeeded is WARNING; stopped by the
user is WARNING; a run timeout is a failure (ERROR). Every observation's status message is its
own error, never the run's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from opstrail.tracing.info import MessageStatus, NodeStatus, WorkflowRunStatus
from opstrail.tracing.tree import Level

STOPPED_MESSAGE: Final = "stopped by the user"
UNFINISHED_MESSAGE: Final = "still running when the trace was recorded"

_SEVERITY: Final = {Level.DEBUG: 0, Level.DEFAULT: 1, Level.WARNING: 2, Level.ERROR: 3}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The level of one observation and the status message that explains it."""

    level: Level
    status_message: str | None = None


OK: Final = Verdict(Level.DEFAULT)


def _text(error: str | None) -> str | None:
    # An empty string is "no error" (Dify stores "" for success).
    return error or None


def run_verdict(status: WorkflowRunStatus, error: str | None, exceptions_count: int = 0) -> Verdict:
    """Level of a workflow run's root observation."""
    if status is WorkflowRunStatus.SUCCEEDED:
        return Verdict(Level.ERROR, _text(error)) if _text(error) else OK
    if status is WorkflowRunStatus.FAILED:
        return Verdict(Level.ERROR, _text(error) or "the run failed")
    if status is WorkflowRunStatus.STOPPED:
        return Verdict(Level.WARNING, _text(error) or STOPPED_MESSAGE)
    if status is WorkflowRunStatus.PARTIAL_SUCCEEDED:
        handled = f"{exceptions_count} node error(s) handled by their error strategy"
        return Verdict(Level.WARNING, _text(error) or handled)
    return Verdict(Level.WARNING, _text(error) or UNFINISHED_MESSAGE)


def node_verdict(status: NodeStatus, error: str | None) -> Verdict:
    """Level of one node execution, with the node's own error as its status message."""
    if status is NodeStatus.SUCCEEDED:
        return OK
    if status is NodeStatus.FAILED:
        return Verdict(Level.ERROR, _text(error) or "the node failed")
    if status is NodeStatus.EXCEPTION:
        return Verdict(Level.WARNING, _text(error) or "the node failed; its error was handled")
    if status is NodeStatus.STOPPED:
        return Verdict(Level.WARNING, _text(error) or STOPPED_MESSAGE)
    return Verdict(Level.WARNING, _text(error) or UNFINISHED_MESSAGE)


def message_verdict(status: MessageStatus, error: str | None) -> Verdict:
    """Level of a message's root observation."""
    if status is MessageStatus.ERROR:
        return Verdict(Level.ERROR, _text(error) or "the message failed")
    if status is MessageStatus.STOPPED:
        return Verdict(Level.WARNING, _text(error) or STOPPED_MESSAGE)
    return Verdict(Level.ERROR, _text(error)) if _text(error) else OK


def error_verdict(error: str | None) -> Verdict:
    """Level of a model call, tool call or retrieval: ERROR with its error, else DEFAULT."""
    return Verdict(Level.ERROR, _text(error)) if _text(error) else OK


def moderation_verdict(flagged: bool, error: str | None, action: str, stage: str) -> Verdict:
    """Level of a moderation check: ERROR when the check failed, WARNING when it flagged."""
    if _text(error):
        return Verdict(Level.ERROR, _text(error))
    if flagged:
        return Verdict(Level.WARNING, f"{stage} flagged by moderation (action: {action})")
    return OK


def worst(levels: Iterable[Level]) -> Level:
    """The most severe of ``levels`` (DEFAULT when empty)."""
    return max(levels, key=_SEVERITY.__getitem__, default=Level.DEFAULT)

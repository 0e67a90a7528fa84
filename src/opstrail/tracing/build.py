"""Build the vendor-neutral trace tree of a run, and the score of a rating.

``build_trace`` dispatches on the record's kind to ``opstrail.tracing.builders``; every
function here is pure and deterministic: the same record always gives the same tree, ids
included, so a retry or a re-export reproduces exactly what was sent before.
"""

from __future__ import annotations

from opstrail import ids
from opstrail.tracing.builders.common import context_metadata
from opstrail.tracing.builders.message import build_message_trace
from opstrail.tracing.builders.options import BuildOptions
from opstrail.tracing.builders.title import build_title_trace
from opstrail.tracing.builders.workflow import build_workflow_trace
from opstrail.tracing.info import (
    FeedbackInfo,
    GenerateNameTraceInfo,
    MessageTraceInfo,
    RootTraceInfo,
    WorkflowTraceInfo,
)
from opstrail.tracing.tree import Score, Trace
from opstrail.tracing.values import JsonValue

__all__ = ["FEEDBACK_SCORE_NAME", "BuildOptions", "build_score", "build_trace"]

FEEDBACK_SCORE_NAME = "user-feedback"


def build_trace(info: RootTraceInfo, options: BuildOptions = BuildOptions()) -> Trace:
    """Return the trace tree of one root record (a message, a workflow or chatflow run, or
    a conversation title).

    Raises:
        InvalidIdError: the caller's trace id (``RunContext.external_trace_id``) breaks the
            id rules.
        TraceModelError: the record is inconsistent (a node execution twice, ids that would
            collide, a title sequence below 1).
    """
    if isinstance(info, MessageTraceInfo):
        return build_message_trace(info, options)
    if isinstance(info, WorkflowTraceInfo):
        return build_workflow_trace(info, options)
    if isinstance(info, GenerateNameTraceInfo):
        return build_title_trace(info, options)
    raise TypeError(f"not a root trace record: {type(info).__name__}")


def feedback_trace_id(feedback: FeedbackInfo) -> str:
    """The trace id a rating scores: the caller's trace id rule when the run had one, else
    the domain id's (message id, or the workflow run id of a chatflow message)."""
    if feedback.trace_id_is_external:
        return ids.external_trace_id(feedback.trace_domain_id)
    return ids.trace_id(feedback.trace_domain_id)


def build_score(feedback: FeedbackInfo, options: BuildOptions = BuildOptions()) -> Score | None:
    """Return the BOOLEAN ``user-feedback`` score of a rating (like 1, dislike 0), or
    ``None`` for a revoked rating (the score with the same id is to be deleted).

    The score id is ``ids.score_id(message_id)``: a re-rating replaces the score.
    ``options`` is accepted for symmetry with ``build_trace``; scores carry no release.
    """
    del options  # scores have no name or release to vary
    if feedback.rating is None:
        return None
    metadata: dict[str, JsonValue] = {
        **context_metadata(feedback.context),
        "message_id": feedback.message_id,
        "rating": feedback.rating,
    }
    return Score(
        id=ids.score_id(feedback.message_id),
        trace_id=feedback_trace_id(feedback),
        name=FEEDBACK_SCORE_NAME,
        value=1.0 if feedback.rating == "like" else 0.0,
        data_type="BOOLEAN",
        timestamp=feedback.created_at,
        comment=feedback.content,
        environment=feedback.context.environment,
        metadata=metadata,
    )

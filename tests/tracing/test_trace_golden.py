"""Golden trees: the whole trace of every kind and app mode, field by field.

Each golden was generated with ``OPSTRAIL_UPDATE_GOLDEN=1`` and then read line by line against
decisions.md ("Ids", "Tree shapes", "Levels") before being kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from opstrail.tracing import samples
from opstrail.tracing.build import BuildOptions, build_score, build_trace
from opstrail.tracing.info import MessageStatus, RootTraceInfo

from .rendering import check_golden, render_score, render_trace


def _chat_failed() -> RootTraceInfo:
    return samples.chat_message(
        status=MessageStatus.ERROR, error="Rate limit reached for gpt-4o-mini"
    )


def _chat_external_id() -> RootTraceInfo:
    return samples.chat_message(context=samples.run_context(external_trace_id="order-7781"))


def _chat_eur() -> RootTraceInfo:
    return samples.chat_message(currency="EUR", with_retrieval=False, with_suggestions=False)


def _chat_unpriced() -> RootTraceInfo:
    return samples.chat_message(priced=False, with_retrieval=False, with_suggestions=False)


def _chat_offline() -> RootTraceInfo:
    info = samples.chat_message(with_retrieval=False, with_suggestions=False, with_moderation=False)
    call = samples.offline_model_call(start=info.start_time, completion="offline answer")
    return replace(info, model_call=call, total_price=Decimal("0"), outputs="offline answer")


def _chat_console() -> RootTraceInfo:
    return samples.chat_message(
        context=samples.console_context(), with_retrieval=False, with_suggestions=False
    )


TRACE_CASES: dict[str, Callable[[], RootTraceInfo]] = {
    "chat_message": samples.chat_message,
    "chat_message_failed": _chat_failed,
    "chat_message_console": _chat_console,
    "chat_message_external_trace_id": _chat_external_id,
    "chat_message_eur_price": _chat_eur,
    "chat_message_unpriced": _chat_unpriced,
    "chat_message_offline_model": _chat_offline,
    "completion_message": samples.completion_message,
    "agent_chat_message": samples.agent_message,
    "flagged_moderation_message": samples.flagged_message,
    "workflow_run_5_nodes": lambda: samples.workflow_run(5),
    "workflow_branching_partial_succeeded": samples.branching_workflow_run,
    "workflow_failed_node": samples.failed_workflow_run,
    "workflow_stopped": samples.stopped_workflow_run,
    "chatflow_run": samples.chatflow_run,
    "conversation_name_1": lambda: samples.conversation_name(1),
    "conversation_name_2": lambda: samples.conversation_name(2),
}


@pytest.mark.parametrize("case", sorted(TRACE_CASES))
def test_trace_matches_golden_for_each_kind_and_mode(case: str) -> None:
    """The built tree of each sample equals its reviewed golden file."""
    check_golden(case, render_trace(build_trace(TRACE_CASES[case]())))


def test_trace_matches_golden_with_low_cardinality_names_and_release() -> None:
    """Low-cardinality names and a release give the reviewed chatflow golden."""
    options = BuildOptions(low_cardinality_names=True, release="2026.08.1")
    check_golden(
        "chatflow_run_low_cardinality", render_trace(build_trace(samples.chatflow_run(), options))
    )


@pytest.mark.parametrize(
    ("case", "rating", "content", "chatflow"),
    [
        ("feedback_like", "like", None, False),
        ("feedback_dislike_comment", "dislike", "Too many calories.", False),
        ("feedback_revoked", None, None, False),
        ("feedback_like_chatflow", "like", None, True),
    ],
)
def test_score_matches_golden(
    case: str, rating: str | None, content: str | None, chatflow: bool
) -> None:
    """Each rating's score (or None when revoked) equals its reviewed golden file."""
    if chatflow:
        info = samples.feedback(
            "like",
            message_id=samples.CHATFLOW_MESSAGE_ID,
            trace_domain_id=samples.CHATFLOW_RUN_ID,
        )
    else:
        info = samples.feedback(
            None if rating is None else ("like" if rating == "like" else "dislike"),
            content=content,
        )
    check_golden(case, render_score(build_score(info)))

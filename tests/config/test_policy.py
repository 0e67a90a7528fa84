"""Content policy (full, masked, metadata-only) and deterministic sampling."""

from __future__ import annotations

from dataclasses import replace

import pytest

from opstrail import ids
from opstrail.errors import ValidationError
from opstrail.tracing import samples
from opstrail.tracing.info import MessageStatus, WorkflowRunStatus
from opstrail.tracing.limits import ERROR_CAP_CHARS
from opstrail.tracing.policy import (
    DEFAULT_MASK_PATTERNS,
    MASK_MARKER,
    ContentPolicy,
    apply_feedback_policy,
    apply_policy,
    is_sampled,
    root_trace_id,
)

METADATA_ONLY = ContentPolicy(mode="metadata-only")
MASKED = ContentPolicy(mode="masked")


def test_policy_full_returns_record_unchanged_when_sampled() -> None:
    """Mode full keeps every field of the record."""
    info = samples.chat_message()
    assert apply_policy(info, ContentPolicy()) == info


def test_metadata_only_removes_message_content_when_applied() -> None:
    """metadata-only drops query, answer, prompts, completions, documents, moderation texts,
    suggestions and message data, keeping ids, usage and timings."""
    info = samples.chat_message(query="Where is my parcel QUERYMARK?")
    contents = [
        "QUERYMARK",
        str(info.outputs),
        "You are a nutrition assistant.",
        info.dataset_retrievals[0].documents[0].content,
        info.suggested_question.suggested_question[0],
    ]
    result = apply_policy(info, METADATA_ONLY)
    assert result is not None
    text = repr(result)
    for content in contents:
        assert content not in text
    assert result.query == ""
    assert result.outputs is None
    assert result.message_data == {}
    assert result.model_call.prompt_messages is None and result.model_call.completion is None
    assert result.dataset_retrievals[0].documents == ()
    assert result.suggested_question.suggested_question == ()
    assert all(m.preset_response == "" and m.query == "" for m in result.moderations)
    # What stays: ids, tokens, models and times.
    assert result.message_id == info.message_id
    assert result.total_tokens == info.total_tokens
    assert result.model_call.prompt_tokens == info.model_call.prompt_tokens
    assert result.start_time == info.start_time and result.end_time == info.end_time


def test_metadata_only_removes_tool_and_node_content_when_applied() -> None:
    """metadata-only drops tool inputs/outputs, agent thoughts and node inputs/outputs/process
    data, but keeps the tool's error message."""
    agent = apply_policy(samples.agent_message(), METADATA_ONLY)
    assert agent is not None
    assert all(t.tool_inputs == {} and t.tool_outputs is None for t in agent.tool_calls)
    assert all(r.thought == "" for r in agent.agent_rounds)
    assert [t.error for t in agent.tool_calls] == [None, "division by zero"]
    workflow = apply_policy(samples.workflow_run(4), METADATA_ONLY)
    assert workflow is not None
    assert workflow.workflow_run_inputs == {} and workflow.workflow_run_outputs == {}
    for node in workflow.node_executions:
        assert node.inputs == {} and node.outputs == {} and node.process_data == {}
    assert "Dify is an LLM app platform." not in repr(workflow)
    # The user id is an identifier, not content: it stays (Langfuse groups by it).
    assert workflow.context.user_session_id == "user-42@example.com"


def test_metadata_only_cuts_error_to_500_chars_when_long() -> None:
    """Error messages survive metadata-only, cut to 500 characters plus a marker."""
    info = samples.chat_message(status=MessageStatus.ERROR, error="E" * 5000)
    result = apply_policy(info, METADATA_ONLY)
    assert result is not None and result.error is not None
    assert result.error.startswith("E" * ERROR_CAP_CHARS)
    assert "E" * (ERROR_CAP_CHARS + 1) not in result.error
    assert "truncated" in result.error


def test_masked_replaces_emails_and_card_numbers_when_present() -> None:
    """The default mask patterns replace e-mail addresses and card numbers with the marker and
    leave the rest of the text alone."""
    query = "Mail bob.smith@example.org, card 4111 1111 1111 1111, order 12345, ok"
    info = samples.chat_message(query=query)
    result = apply_policy(info, MASKED)
    assert result is not None
    assert result.query == f"Mail {MASK_MARKER}, card {MASK_MARKER}, order 12345, ok"
    assert "bob.smith@example.org" not in repr(result)
    assert "4111 1111 1111 1111" not in repr(result)
    assert result.message_id == info.message_id


def test_masked_uses_custom_patterns_when_given() -> None:
    """Custom patterns replace the defaults and apply inside node inputs too."""
    policy = ContentPolicy(mode="masked", mask_patterns=(r"Dify",))
    result = apply_policy(samples.workflow_run(4), policy)
    assert result is not None
    assert "Dify is" not in repr(result)
    assert f"{MASK_MARKER} is an LLM app platform." in repr(result)
    assert "user-42@example.com" in repr(result)  # defaults replaced, not added


def test_sampling_drops_successful_runs_when_rate_zero() -> None:
    """A zero rate keeps no successful run."""
    policy = ContentPolicy(sample_rate=0.0)
    assert apply_policy(samples.chat_message(), policy) is None
    assert apply_policy(samples.workflow_run(4), policy) is None
    assert apply_policy(samples.conversation_name(), policy) is None


def test_sampling_keeps_failed_runs_when_rate_zero() -> None:
    """Failed runs, errored messages and runs with a failed tool are kept at any rate."""
    policy = ContentPolicy(sample_rate=0.0, mode="metadata-only")
    failed = samples.failed_workflow_run()
    assert failed.status == WorkflowRunStatus.FAILED
    errored = samples.chat_message(status=MessageStatus.ERROR, error="model timed out")
    for info in (failed, errored, samples.agent_message(), samples.conversation_name(error="x")):
        assert apply_policy(info, policy) is not None


def test_is_sampled_is_deterministic_and_near_rate_when_many_ids() -> None:
    """The same id always gets the same answer, and about `rate` of ids are kept."""
    trace_ids = [ids.trace_id(f"run-{n}") for n in range(4000)]
    kept = [t for t in trace_ids if is_sampled(t, 0.25)]
    assert kept == [t for t in trace_ids if is_sampled(t, 0.25)]
    assert 0.2 < len(kept) / len(trace_ids) < 0.3
    # Monotone in the rate: what 0.25 keeps, 0.5 keeps too.
    assert all(is_sampled(t, 0.5) for t in kept)


def test_sampling_follows_trace_id_when_applied() -> None:
    """apply_policy keeps a successful run exactly when its trace id is sampled."""
    policy = ContentPolicy(sample_rate=0.5)
    for n in range(50):
        info = samples.chat_message(message_id=samples.sample_uuid(f"m{n}"))
        expected = is_sampled(ids.trace_id(info.message_id), 0.5)
        assert (apply_policy(info, policy) is not None) == expected


def test_root_trace_id_uses_external_id_when_given() -> None:
    """Sampling decides on the trace id the trace will really have (a caller's id wins)."""
    context = replace(samples.run_context(), external_trace_id="order-77")
    info = samples.chat_message(context=context)
    assert root_trace_id(info) == ids.external_trace_id("order-77")


def test_feedback_policy_follows_its_trace_when_sampled_out() -> None:
    """A rating is dropped with its trace, and its comment masked or removed by mode."""
    rating = samples.feedback(content="write to me: eve@example.com")
    assert apply_feedback_policy(rating, ContentPolicy(sample_rate=0.0)) is None
    masked = apply_feedback_policy(rating, MASKED)
    assert masked is not None and masked.content == f"write to me: {MASK_MARKER}"
    stripped = apply_feedback_policy(rating, METADATA_ONLY)
    assert stripped is not None and stripped.content is None and stripped.rating == "like"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mode": "secret"}, "content_mode"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"sample_rate": -0.1}, "sample_rate"),
        ({"mask_patterns": ("(unclosed",)}, "not a valid regular expression"),
        ({"mask_patterns": ("a*",)}, "matches empty text"),
        ({"mask_patterns": ("x" * 501,)}, "at most 500"),
        ({"mask_patterns": ("(a+)+$",)}, "nests quantifiers"),
        ({"mask_patterns": (r"(\w*)*@",)}, "nests quantifiers"),
        ({"mask_patterns": (["a list"],)}, "non-empty string"),
        ({"mask_patterns": ("", "x")}, "non-empty string"),
    ],
)
def test_content_policy_refuses_bad_values_when_built(kwargs: dict, fragment: str) -> None:
    """A policy that cannot work is refused with code invalid_policy and a clear message,
    every time (compiled patterns are cached, refusals are not)."""
    for _ in range(2):
        with pytest.raises(ValidationError) as caught:
            ContentPolicy(**kwargs)
        assert caught.value.code == "invalid_policy"
        assert fragment in caught.value.message


def test_default_policy_masks_with_default_patterns_when_masked() -> None:
    """The defaults cover e-mails and card numbers."""
    assert ContentPolicy().mask_patterns == DEFAULT_MASK_PATTERNS
    assert len(DEFAULT_MASK_PATTERNS) == 2

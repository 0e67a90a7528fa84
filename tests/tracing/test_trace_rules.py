"""Specific rules of the builders: rendering, cost, usage, ids, nesting, levels, scores."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from opstrail import ids
from opstrail.errors import InvalidIdError, TraceModelError
from opstrail.tracing import samples
from opstrail.tracing.build import BuildOptions, build_score, build_trace
from opstrail.tracing.builders.common import cost_of, render_io, usage_of
from opstrail.tracing.info import (
    MessageStatus,
    ModerationStage,
    NodeExecution,
    NodeStatus,
    WorkflowTraceInfo,
)
from opstrail.tracing.limits import DOCUMENT_CAP_CHARS, FIELD_CAP_BYTES, TRUNCATION_METADATA_KEY
from opstrail.tracing.tree import Cost, Level, Observation, ObservationType, Trace
from opstrail.tracing.values import JsonValue

from .rendering import dig


def _named(trace: Trace, name: str) -> list[Observation]:
    return [o for o in trace.observations if o.name == name]


def _one(trace: Trace, name: str) -> Observation:
    (found,) = _named(trace, name)
    return found


def _by_id(trace: Trace) -> dict[str, Observation]:
    return {o.id: o for o in trace.observations}


# --- rendering -----------------------------------------------------------------------------


def test_render_io_renames_dify_text_to_content_when_chat_messages() -> None:
    """Dify prompt messages render as chat: ``text`` becomes ``content``, empty files go."""
    value: JsonValue = [
        {"role": "user", "text": "hi", "files": []},
        {"role": "assistant", "text": "yo"},
    ]
    assert (render_io(value)) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]


def test_render_io_keeps_plain_string_and_other_json_when_not_chat() -> None:
    """A plain string stays a string and a non-chat list stays JSON (never a repr)."""
    assert render_io("plain answer") == "plain answer"
    assert render_io(["a", "b"]) == ["a", "b"]
    assert render_io([{"text": "no role"}]) == [{"text": "no role"}]


def test_llm_generation_output_stays_plain_string_when_model_returns_text() -> None:
    """The message ``llm`` generation's output is the answer string itself."""
    trace = build_trace(samples.chat_message())
    assert isinstance(_one(trace, "llm").output, str)


# --- cost and usage ------------------------------------------------------------------------


def test_cost_is_sent_in_usd_when_priced_in_usd() -> None:
    """A USD price becomes the cost, with input/output split and total."""
    cost, meta = cost_of(Decimal("0.003"), "USD", Decimal("0.001"), Decimal("0.002"))
    assert (Cost(total=0.003, input=0.001, output=0.002), {}) == (cost, meta)


def test_cost_moves_to_metadata_when_currency_is_not_usd() -> None:
    """A price in another currency is no cost: metadata price, currency, cost_unpriced."""
    cost, meta = cost_of(Decimal("0.5"), "EUR")
    assert cost is None
    assert meta == {"price": "0.5", "currency": "EUR", "cost_unpriced": True}


def test_cost_is_absent_and_marked_unpriced_when_price_unknown() -> None:
    """An unknown price sends no cost (never 0) and marks cost_unpriced."""
    assert cost_of(None, "USD") == (None, {"cost_unpriced": True})


def test_cost_is_zero_when_model_is_free_offline_model() -> None:
    """A price of exactly 0 USD (the offline model) is sent as a cost of 0."""
    info = replace(samples.chat_message(), model_call=samples.offline_model_call())
    llm = _one(build_trace(info), "llm")
    assert llm.cost is not None and llm.cost.total == 0
    assert "cost_unpriced" not in llm.metadata


def test_usage_subtracts_sub_buckets_when_details_are_inclusive() -> None:
    """Cached/reasoning sub-buckets are taken out of input/output; total is their sum;
    ``input``/``output`` keys in details are ignored (no double count)."""
    usage = usage_of(
        812, 64, {"input_cached_tokens": 200, "output_reasoning_tokens": 10, "input": 812}
    )
    assert (usage.input, usage.output, usage.total) == (612, 54, 876)
    assert dict(usage.details) == {"input_cached_tokens": 200, "output_reasoning_tokens": 10}


def test_completion_start_time_is_call_start_plus_time_to_first_token() -> None:
    """completion_start_time = the call's start + time to first token."""
    info = samples.chat_message()
    assert info.model_call is not None and info.model_call.time_to_first_token is not None
    llm = _one(build_trace(info), "llm")
    expected = info.model_call.start_time + timedelta(seconds=info.model_call.time_to_first_token)
    assert expected == llm.completion_start_time


def test_trace_metadata_totals_hold_tokens_and_usd_price() -> None:
    """Trace metadata carries total_tokens and the exact total_price text."""
    info = samples.chat_message()
    trace = build_trace(info)
    assert (trace.metadata["total_tokens"], trace.metadata["total_price"]) == (
        info.total_tokens,
        format(info.total_price, "f"),
    )


def test_message_llm_rebuilt_from_counts_when_model_call_missing() -> None:
    """A message record without its call still gets an ``llm`` generation with its usage."""
    info = replace(samples.chat_message(), model_call=None)
    llm = _one(build_trace(info), "llm")
    assert llm.usage is not None and llm.usage.total == info.total_tokens
    assert llm.model == info.ls_model_name


# --- size caps ------------------------------------------------------------------------------


def test_retrieved_document_content_is_cut_with_marker_when_over_cap() -> None:
    """A chunk over DOCUMENT_CAP_CHARS is cut, marked, and flagged in metadata."""
    info = replace(
        samples.chat_message(), dataset_retrievals=(samples.retrieval(long_content=True),)
    )
    retriever = _one(build_trace(info), "dataset_retrieval")
    content = dig(retriever.output, "documents", 0, "content")
    assert content.startswith("Lorem") and "…[truncated " in content
    assert len(content) < DOCUMENT_CAP_CHARS + 40
    assert retriever.metadata[TRUNCATION_METADATA_KEY] is True


def test_node_input_over_field_cap_is_cut_and_flagged() -> None:
    """A node input larger than FIELD_CAP_BYTES becomes marked text; metadata says so."""
    info = samples.workflow_run(4)
    first, llm, code, end = info.node_executions
    assert code.node_type == "code"
    big = replace(code, inputs={"blob": "x" * (FIELD_CAP_BYTES + 10)})
    info = replace(info, node_executions=(first, llm, big, end))
    node = _by_id(build_trace(info))[ids.observation_id(ids.seed_node(big.id))]
    assert isinstance(node.input, str) and "…[truncated " in node.input
    assert node.metadata[TRUNCATION_METADATA_KEY] is True


# --- ids and names -----------------------------------------------------------------------------


def test_trace_id_is_callers_id_when_external_trace_id_given() -> None:
    """A caller's trace id replaces the message id; the raw value stays in metadata."""
    raw = "3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b"
    trace = build_trace(samples.chat_message(context=samples.run_context(external_trace_id=raw)))
    assert ("3f2b1c9e8d7a4e6f9a0b1c2d3e4f5a6b", raw) == (
        trace.id,
        trace.metadata["external_trace_id"],
    )


def test_build_refuses_external_trace_id_when_it_breaks_the_rules() -> None:
    """A caller's trace id with forbidden characters raises InvalidIdError."""
    with pytest.raises(InvalidIdError):
        build_trace(samples.chat_message(context=samples.run_context(external_trace_id="a b")))


def test_observation_ids_follow_frozen_seeds_for_message() -> None:
    """Message observations use the msg:<id>:<part> seeds of decisions.md."""
    info = samples.agent_message()
    trace = build_trace(info)
    mid = info.message_id
    expected = {
        ids.observation_id(f"msg:{mid}:root"),
        ids.observation_id(f"msg:{mid}:agent"),
        ids.observation_id(f"msg:{mid}:agent:1"),
        ids.observation_id(f"msg:{mid}:agent:2"),
        *(ids.observation_id(f"msg:{mid}:tool:{t.thought_id}") for t in info.tool_calls),
    }
    assert expected == {o.id for o in trace.observations}


def test_names_are_low_cardinality_when_option_set() -> None:
    """low_cardinality_names gives ``message`` and ``workflow`` trace names."""
    options = BuildOptions(low_cardinality_names=True)
    assert build_trace(samples.chat_message(), options).name == "message"
    workflow = build_trace(samples.workflow_run(3), options)
    assert (workflow.name, workflow.observations[0].name) == ("workflow", "workflow")


def test_release_and_environment_come_from_options_and_context() -> None:
    """release is the option's; environment is the run context's (debug for console)."""
    info = samples.chat_message(context=samples.console_context())
    trace = build_trace(info, BuildOptions(release="2026.08.1"))
    assert (trace.release, trace.environment, trace.user_id) == (
        "2026.08.1",
        "debug",
        samples.ACCOUNT_ID,
    )


# --- message trees --------------------------------------------------------------------------------


def test_agent_tools_sit_under_agent_and_failing_tool_is_error() -> None:
    """Tool calls are children of the ``agent``; the failing one is ERROR with its error."""
    trace = build_trace(samples.agent_message())
    agent = _one(trace, "agent")
    calc, clock = _one(trace, "calculator"), _one(trace, "current_time")
    assert (calc.parent_id, clock.parent_id) == (agent.id, agent.id)
    assert (calc.level, calc.status_message, clock.level) == (
        Level.ERROR,
        "division by zero",
        Level.DEFAULT,
    )
    assert agent.usage is None and all(g.usage for g in _named(trace, "llm"))


def test_moderation_is_error_when_check_itself_failed() -> None:
    """A moderation check that failed is an ERROR guardrail with the check's error."""
    check = samples.moderation(error="moderation API unreachable")
    trace = build_trace(replace(samples.chat_message(), moderations=(check,)))
    guard = _one(trace, "moderation")
    assert (guard.level, guard.status_message) == (Level.ERROR, "moderation API unreachable")


def test_output_moderation_follows_llm_with_its_own_seed() -> None:
    """Input and output checks are two guardrails with stage seeds, output after the llm."""
    info = samples.chat_message()
    output_check = samples.moderation(stage=ModerationStage.OUTPUT, start=info.end_time)
    trace = build_trace(replace(info, moderations=(*info.moderations, output_check)))
    names = [o.name for o in trace.observations]
    guards = _named(trace, "moderation")
    assert names.index("llm") < len(names) - 1 - names[::-1].index("moderation")
    assert {g.id for g in guards} == {
        ids.observation_id(f"msg:{info.message_id}:moderation:input"),
        ids.observation_id(f"msg:{info.message_id}:moderation:output"),
    }


def test_second_retrieval_gets_numbered_seed_when_message_has_two() -> None:
    """Two retrievals in one message get ``retrieval`` and ``retrieval:2`` seeds."""
    info = samples.chat_message()
    two = (*info.dataset_retrievals, samples.retrieval(start=info.start_time))
    trace = build_trace(replace(info, dataset_retrievals=two))
    assert {o.id for o in _named(trace, "dataset_retrieval")} == {
        ids.observation_id(f"msg:{info.message_id}:retrieval"),
        ids.observation_id(f"msg:{info.message_id}:retrieval:2"),
    }


def test_retrieval_is_warning_when_a_dataset_was_skipped() -> None:
    """A retrieval with warnings (missing dataset) is WARNING with the warning text."""
    retrieval = samples.retrieval(warnings=("dataset 42 not found",))
    trace = build_trace(replace(samples.chat_message(), dataset_retrievals=(retrieval,)))
    found = _one(trace, "dataset_retrieval")
    assert (found.level, found.status_message) == (Level.WARNING, "dataset 42 not found")


def test_suggested_question_is_error_when_its_call_failed() -> None:
    """A failed suggestion call is an ERROR generation with its own error."""
    suggestion = samples.suggested_questions(error="timeout")
    trace = build_trace(replace(samples.chat_message(), suggested_question=suggestion))
    found = _one(trace, "suggested_question")
    assert (found.level, found.status_message) == (Level.ERROR, "timeout")


def test_stopped_message_root_is_warning() -> None:
    """A message stopped by the user has a WARNING root."""
    trace = build_trace(samples.chat_message(status=MessageStatus.STOPPED))
    assert trace.observations[0].level is Level.WARNING


# --- workflow trees ------------------------------------------------------------------------------


def test_node_status_message_is_its_own_error_never_the_runs() -> None:
    """In a failed run only the failed node carries an error; others keep none."""
    info = samples.failed_workflow_run()
    trace = build_trace(info)
    failed = [n for n in info.node_executions if n.error]
    by_id = _by_id(trace)
    for node in info.node_executions:
        obs = by_id[ids.observation_id(ids.seed_node(node.id))]
        assert obs.status_message == node.error
    assert len(failed) == 2 and info.error not in {n.error for n in failed}


def test_iteration_has_one_wrapper_per_index_under_iteration_node() -> None:
    """Each iteration index is a chain under the iteration node, holding its nodes."""
    info = samples.branching_workflow_run()
    trace = build_trace(info)
    iteration = next(n for n in info.node_executions if n.node_type == "iteration")
    iteration_obs_id = ids.observation_id(ids.seed_node(iteration.id))
    wrappers = [o for o in trace.observations if o.name.startswith("iteration_")]
    assert [w.id for w in wrappers] == [
        ids.observation_id(ids.seed_iteration(iteration.id, i)) for i in range(3)
    ]
    assert all(
        w.parent_id == iteration_obs_id and w.type is ObservationType.CHAIN for w in wrappers
    )
    by_id = _by_id(trace)
    for node in info.node_executions:
        if node.iteration_id is not None:
            obs = by_id[ids.observation_id(ids.seed_node(node.id))]
            assert obs.parent_id == wrappers[node.iteration_index or 0].id
    assert [w.level for w in wrappers] == [Level.DEFAULT, Level.WARNING, Level.DEFAULT]


def test_parallel_branch_has_wrapper_under_normal_parent() -> None:
    """Each parallel branch is a chain (seed par:<run>:<parallel_id>) under the root."""
    info = samples.branching_workflow_run()
    trace = build_trace(info)
    root = trace.observations[0]
    branches = {n.parallel_id for n in info.node_executions if n.parallel_id}
    wrappers = [o for o in trace.observations if o.name.startswith("parallel_")]
    assert {w.id for w in wrappers} == {
        ids.observation_id(ids.seed_parallel(info.workflow_run_id, p)) for p in branches if p
    }
    assert all(w.parent_id == root.id for w in wrappers)


def _iteration_with_parallel_inside(info: WorkflowTraceInfo) -> WorkflowTraceInfo:
    # Put the two "Summarise item" llm nodes of items 0 and 2 in their own branches.
    nodes = []
    for node in info.node_executions:
        if node.title == "Summarise item":
            node = replace(node, parallel_id=f"inner-{node.iteration_index}")
        nodes.append(node)
    return replace(info, node_executions=tuple(nodes))


def test_parallel_branch_nests_under_iteration_index_when_inside_iteration() -> None:
    """A branch inside an iteration sits under that index's wrapper."""
    info = _iteration_with_parallel_inside(samples.branching_workflow_run())
    trace = build_trace(info)
    by_id = _by_id(trace)
    iteration = next(n for n in info.node_executions if n.node_type == "iteration")
    for index in (0, 2):
        wrapper = by_id[
            ids.observation_id(ids.seed_parallel(info.workflow_run_id, f"inner-{index}"))
        ]
        assert wrapper.parent_id == ids.observation_id(ids.seed_iteration(iteration.id, index))


def _loop_run() -> WorkflowTraceInfo:
    base = samples.workflow_run(2)
    run = base.workflow_run_id
    start = base.start_time
    loop = samples.node_execution(
        workflow_run_id=run, position=2, node_type="loop", title="Retry until valid",
        start=start, duration=3, key="loop",
    )  # fmt: skip
    body = tuple(
        replace(
            samples.node_execution(
                workflow_run_id=run, position=3 + i, node_type="code", title="Validate",
                start=start + timedelta(seconds=i), duration=0.5, key=f"body:{i}",
            ),
            loop_id=loop.id,
            loop_index=i,
        )
        for i in range(2)
    )  # fmt: skip
    return replace(base, node_executions=(base.node_executions[0], *body, loop))


def test_loop_has_one_wrapper_per_index_with_loop_seed() -> None:
    """Loop bodies sit under ``loop:<node_execution_id>:<index>`` chains."""
    info = _loop_run()
    trace = build_trace(info)
    loop = info.node_executions[-1]
    wrappers = [o for o in trace.observations if o.name.startswith("loop_")]
    assert [w.id for w in wrappers] == [
        ids.observation_id(ids.seed_loop(loop.id, i)) for i in range(2)
    ]
    assert {w.parent_id for w in wrappers} == {ids.observation_id(ids.seed_node(loop.id))}


def test_node_goes_under_root_with_warning_when_its_iteration_is_missing() -> None:
    """A node naming an iteration that is not in the run lands under the root, with a
    warning in its metadata, instead of a dangling parent."""
    info = samples.workflow_run(3)
    orphan = replace(info.node_executions[1], iteration_id="missing", iteration_index=0)
    info = replace(info, node_executions=(info.node_executions[0], orphan, info.node_executions[2]))
    trace = build_trace(info)
    obs = _by_id(trace)[ids.observation_id(ids.seed_node(orphan.id))]
    assert obs.parent_id == trace.observations[0].id
    assert "missing" in str(obs.metadata["opstrail_warning"])


def test_build_refuses_run_when_node_execution_appears_twice() -> None:
    """Two node executions with one id would collide: TraceModelError."""
    info = samples.workflow_run(3)
    info = replace(info, node_executions=(*info.node_executions, info.node_executions[1]))
    with pytest.raises(TraceModelError):
        build_trace(info)


def _node_with_calls(node_type: str, n_calls: int) -> tuple[WorkflowTraceInfo, NodeExecution]:
    base = samples.workflow_run(3)
    calls = tuple(
        samples.model_call(start=base.start_time + timedelta(seconds=i), duration=0.5)
        for i in range(n_calls)
    )
    node = replace(base.node_executions[1], node_type=node_type, model_calls=calls)
    return replace(
        base, node_executions=(base.node_executions[0], node, base.node_executions[2])
    ), node


@pytest.mark.parametrize(
    ("node_type", "n_calls", "expected_type"),
    [
        ("agent", 2, ObservationType.AGENT),
        ("llm", 2, ObservationType.CHAIN),
        ("knowledge-retrieval", 1, ObservationType.RETRIEVER),
        ("tool", 1, ObservationType.TOOL),
    ],
)
def test_node_with_calls_gets_one_child_generation_per_call(
    node_type: str, n_calls: int, expected_type: ObservationType
) -> None:
    """Agent nodes, multi-call nodes and retriever/tool nodes that called a model hold one
    generation per call; the parent carries no usage."""
    info, node = _node_with_calls(node_type, n_calls)
    trace = build_trace(info)
    node_obs = _by_id(trace)[ids.observation_id(ids.seed_node(node.id))]
    children = [o for o in trace.observations if o.parent_id == node_obs.id]
    assert node_obs.type is expected_type and node_obs.usage is None
    assert [c.type for c in children] == [ObservationType.GENERATION] * n_calls
    assert all(c.usage is not None and c.model == "gpt-4o-mini" for c in children)


@pytest.mark.parametrize("node_type", ["question-classifier", "parameter-extractor", "llm"])
def test_llm_using_node_is_generation_from_summary_when_calls_not_recorded(node_type: str) -> None:
    """A node with Dify-style summary fields only (model, tokens) is still a generation."""
    info = samples.workflow_run(3)
    node = replace(info.node_executions[1], node_type=node_type, model_calls=())
    node = replace(
        node, model_name="gpt-4o-mini", prompt_tokens=10, completion_tokens=5, total_tokens=15
    )
    info = replace(info, node_executions=(info.node_executions[0], node, info.node_executions[2]))
    obs = _by_id(build_trace(info))[ids.observation_id(ids.seed_node(node.id))]
    assert (obs.type, obs.model, obs.usage.total if obs.usage else None) == (
        ObservationType.GENERATION,
        "gpt-4o-mini",
        15,
    )


def test_chatflow_root_holds_query_and_answer() -> None:
    """A chatflow root has the user's query in and the answer out; message_id in metadata."""
    info = samples.chatflow_run()
    trace = build_trace(info)
    assert (trace.input, trace.output, trace.metadata["message_id"]) == (
        info.query,
        info.answer,
        info.message_id,
    )


def test_workflow_moderation_without_message_uses_run_seed() -> None:
    """A workflow-app check (no message) is seeded from the run, never the app-log id."""
    info = samples.workflow_run(3)
    check = samples.moderation(
        message_id=None, workflow_run_id=info.workflow_run_id, workflow_app_log_id="log-1"
    )
    trace = build_trace(replace(info, moderations=(check,)))
    guard = _one(trace, "moderation")
    assert guard.id == ids.observation_id(f"run:{info.workflow_run_id}:moderation:input")
    assert "moderation" in trace.tags and guard.parent_id == trace.observations[0].id


def test_workflow_tags_name_tool_nodes_and_retrieval() -> None:
    """Tool nodes add ``tool`` and the tool name; retrieval nodes ``dataset_retrieval``."""
    tags = build_trace(samples.branching_workflow_run()).tags
    assert tags == ("workflow", "dataset_retrieval", "tool", "current_time")


# --- titles and scores ---------------------------------------------------------------------------


def test_later_title_adds_only_a_child_under_the_external_root() -> None:
    """Sequence 2 builds the same trace id with only its child, the root external."""
    first, second = (
        build_trace(samples.conversation_name(1)),
        build_trace(samples.conversation_name(2)),
    )
    root_id = first.observations[0].id
    assert second.id == first.id
    assert second.external_parent_ids == frozenset({root_id})
    (child,) = second.observations
    assert child.parent_id == root_id
    assert child.id == ids.observation_id(
        ids.seed_conversation_name(samples.CHAT_CONVERSATION_ID, 2)
    )


def test_title_refuses_sequence_below_one() -> None:
    """A title sequence of 0 is a broken record: TraceModelError."""
    with pytest.raises(TraceModelError):
        build_trace(replace(samples.conversation_name(1), sequence=0))


@pytest.mark.parametrize(("rating", "value"), [("like", 1.0), ("dislike", 0.0)])
def test_score_is_boolean_user_feedback_on_message_trace(rating: str, value: float) -> None:
    """Like is 1 and dislike 0, a BOOLEAN ``user-feedback`` on the message's trace."""
    info = samples.feedback("like" if rating == "like" else "dislike", content="thanks")
    score = build_score(info)
    assert score is not None
    assert (score.id, score.trace_id, score.name, score.value, score.data_type, score.comment) == (
        ids.score_id(info.message_id),
        build_trace(samples.chat_message()).id,
        "user-feedback",
        value,
        "BOOLEAN",
        "thanks",
    )


def test_score_is_none_when_rating_revoked() -> None:
    """A revoked rating builds no score (the exporter deletes ids.score_id)."""
    assert build_score(samples.feedback(None)) is None


def test_score_targets_chatflow_trace_when_message_is_from_chatflow() -> None:
    """Feedback on a chatflow message scores the run's trace."""
    info = samples.feedback(
        "like", message_id=samples.CHATFLOW_MESSAGE_ID, trace_domain_id=samples.CHATFLOW_RUN_ID
    )
    score = build_score(info)
    assert score is not None and score.trace_id == build_trace(samples.chatflow_run()).id


def test_score_targets_callers_trace_id_when_external() -> None:
    """With trace_id_is_external the score goes to the caller's trace id."""
    info = samples.feedback("dislike", trace_domain_id="order-7781", trace_id_is_external=True)
    score = build_score(info)
    ctx = samples.run_context(external_trace_id="order-7781")
    assert score is not None
    assert score.trace_id == build_trace(samples.chat_message(context=ctx)).id


def test_score_environment_comes_from_context() -> None:
    """The score's environment is the rating's run context's."""
    score = build_score(samples.feedback("like", context=samples.console_context()))
    assert score is not None and score.environment == "debug"


def test_node_status_exception_is_warning_with_own_error() -> None:
    """A node whose error a fail-branch handled is WARNING with its own error."""
    info = samples.branching_workflow_run()
    node = next(n for n in info.node_executions if n.status is NodeStatus.EXCEPTION)
    obs = _by_id(build_trace(info))[ids.observation_id(ids.seed_node(node.id))]
    assert (obs.level, obs.status_message) == (Level.WARNING, node.error)

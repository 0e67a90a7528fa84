"""Properties of every built tree, over generated records (varied ids, times, sizes,
statuses), built from the public samples."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opstrail.errors import NaiveDatetimeError
from opstrail.tracing import samples
from opstrail.tracing.build import BuildOptions, build_trace
from opstrail.tracing.info import (
    MessageStatus,
    NodeStatus,
    RootTraceInfo,
    WorkflowRunStatus,
    WorkflowTraceInfo,
)
from opstrail.tracing.tree import Trace

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)), UTC]
)
STARTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=ZONES
)
# UUIDs (trace id without dashes) and other domain ids (hashed): both id rules.
DOMAIN_IDS = st.one_of(
    st.uuids().map(str),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40),
)
EXTERNAL_IDS = st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z", fullmatch=True))
CONTEXTS = st.builds(samples.run_context, external_trace_id=EXTERNAL_IDS)


def _with_node_statuses(info: WorkflowTraceInfo, statuses: list[NodeStatus]) -> WorkflowTraceInfo:
    nodes = tuple(
        replace(node, status=status, error=None if status is NodeStatus.SUCCEEDED else f"boom {i}")
        for i, (node, status) in enumerate(zip(info.node_executions, statuses * 100, strict=False))
    )
    return replace(info, node_executions=nodes)


workflows = st.builds(
    samples.workflow_run,
    st.integers(min_value=2, max_value=30),
    workflow_run_id=DOMAIN_IDS,
    start=STARTS,
    context=CONTEXTS,
    status=st.sampled_from(list(WorkflowRunStatus)),
    node_seconds=st.floats(min_value=0.001, max_value=30),
)
structured = st.one_of(
    st.builds(samples.branching_workflow_run, workflow_run_id=DOMAIN_IDS, start=STARTS,
              context=CONTEXTS, fail_last_node=st.booleans()),
    st.builds(samples.stopped_workflow_run, workflow_run_id=DOMAIN_IDS, start=STARTS),
    st.builds(samples.chatflow_run, workflow_run_id=DOMAIN_IDS, message_id=DOMAIN_IDS,
              conversation_id=DOMAIN_IDS, start=STARTS, context=CONTEXTS),
)  # fmt: skip
workflow_variants = st.one_of(
    workflows,
    structured,
    st.tuples(workflows, st.lists(st.sampled_from(list(NodeStatus)), min_size=1, max_size=5)).map(
        lambda pair: _with_node_statuses(*pair)
    ),
)
messages = st.one_of(
    st.builds(samples.chat_message, message_id=DOMAIN_IDS, conversation_id=DOMAIN_IDS,
              start=STARTS, context=CONTEXTS, with_retrieval=st.booleans(),
              with_moderation=st.booleans(), with_suggestions=st.booleans(),
              status=st.sampled_from(list(MessageStatus)), priced=st.booleans(),
              currency=st.sampled_from(["USD", "EUR", "usd"])),
    st.builds(samples.agent_message, message_id=DOMAIN_IDS, conversation_id=DOMAIN_IDS,
              start=STARTS, context=CONTEXTS),
    st.builds(samples.completion_message, message_id=DOMAIN_IDS, start=STARTS, context=CONTEXTS),
    st.builds(samples.flagged_message, message_id=DOMAIN_IDS, start=STARTS, context=CONTEXTS),
)  # fmt: skip
titles = st.builds(
    samples.conversation_name,
    st.integers(min_value=1, max_value=5),
    conversation_id=DOMAIN_IDS,
    start=STARTS,
)
records: st.SearchStrategy[RootTraceInfo] = st.one_of(workflow_variants, messages, titles)
options = st.builds(
    BuildOptions, low_cardinality_names=st.booleans(), release=st.none() | st.just("r1")
)

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _ancestors(trace: Trace, obs_id: str) -> list[str]:
    parents = {o.id: o.parent_id for o in trace.observations}
    chain: list[str] = []
    current = parents.get(obs_id)
    while current is not None and current in parents:
        chain.append(current)
        current = parents[current]
    return chain


@PROPERTY_SETTINGS
@given(records, options)
def test_build_is_deterministic_for_any_record(info: RootTraceInfo, opts: BuildOptions) -> None:
    """Building the same record twice gives the same tree, ids included."""
    assert build_trace(info, opts) == build_trace(info, opts)


@PROPERTY_SETTINGS
@given(records, options)
def test_every_parent_exists_in_trace_or_external_parents(
    info: RootTraceInfo, opts: BuildOptions
) -> None:
    """Each parent id is an observation of the same trace or a declared external parent."""
    trace = build_trace(info, opts)
    known = {o.id for o in trace.observations} | trace.external_parent_ids
    assert all(o.parent_id is None or o.parent_id in known for o in trace.observations)
    assert all(o.trace_id == trace.id for o in trace.observations)


@PROPERTY_SETTINGS
@given(records)
def test_observation_ids_are_unique_and_one_root_at_most(info: RootTraceInfo) -> None:
    """No two observations share an id; a trace has exactly one root unless its root was
    exported earlier (then none, and the parent is external)."""
    trace = build_trace(info)
    observation_ids = [o.id for o in trace.observations]
    assert len(observation_ids) == len(set(observation_ids))
    roots = [o for o in trace.observations if o.parent_id is None]
    assert len(roots) == (0 if trace.external_parent_ids else 1)


@PROPERTY_SETTINGS
@given(records)
def test_every_timestamp_is_timezone_aware_utc(info: RootTraceInfo) -> None:
    """Trace and observation times are aware and in UTC, whatever zone the record used."""
    trace = build_trace(info)
    times = [trace.timestamp]
    for o in trace.observations:
        times += [o.start_time, o.end_time]
        if o.completion_start_time is not None:
            times.append(o.completion_start_time)
    assert all(t.utcoffset() == timedelta(0) for t in times)


@PROPERTY_SETTINGS
@given(records)
def test_usage_and_cost_only_on_generation_like_leaves(info: RootTraceInfo) -> None:
    """Usage, cost and model sit only on generation-like observations, and never on an
    ancestor of another observation with usage (tokens are never counted twice)."""
    trace = build_trace(info)
    with_usage = {o.id for o in trace.observations if o.usage is not None}
    for o in trace.observations:
        if o.usage is not None or o.cost is not None or o.model is not None:
            assert o.type.generation_like, o.name
        if o.usage is not None:
            assert o.usage.total == o.usage.input + o.usage.output + sum(o.usage.details.values())
            assert not (set(_ancestors(trace, o.id)) & with_usage), o.name
        if o.cost is not None:
            assert o.cost.total >= 0


@PROPERTY_SETTINGS
@given(workflows)
def test_workflow_generation_usage_sums_to_run_total_tokens(info: WorkflowTraceInfo) -> None:
    """The run's total_tokens equals the sum of its leaf generations' usage."""
    trace = build_trace(info)
    assert sum(o.usage.total for o in trace.observations if o.usage) == info.total_tokens
    assert len(trace.observations) == len(info.node_executions) + 1


@PROPERTY_SETTINGS
@given(records)
def test_trace_id_is_stable_hex_of_domain_or_caller_id(info: RootTraceInfo) -> None:
    """The trace id is 32 lowercase hex and the caller's raw id is kept in metadata."""
    trace = build_trace(info)
    assert len(trace.id) == 32 and trace.id == trace.id.lower()
    external = getattr(getattr(info, "context", None), "external_trace_id", None)
    if external and not hasattr(info, "sequence"):
        assert trace.metadata["external_trace_id"] == external


def test_naive_datetime_is_refused_with_naive_datetime_error() -> None:
    """A record built with a naive datetime raises NaiveDatetimeError at creation."""
    with pytest.raises(NaiveDatetimeError):
        samples.chat_message(start=datetime(2026, 8, 22, 10, 0))


def test_naive_datetime_is_refused_when_replaced_into_a_record() -> None:
    """dataclasses.replace with a naive time runs the same check."""
    with pytest.raises(NaiveDatetimeError):
        replace(samples.workflow_run(3), end_time=datetime(2026, 8, 22, 10, 0))


@PROPERTY_SETTINGS
@given(records)
def test_ids_do_not_depend_on_build_options(info: RootTraceInfo) -> None:
    """Names and release may change with the options; the trace and observation ids never do."""
    plain_ids = [o.id for o in build_trace(info).observations]
    options = BuildOptions(low_cardinality_names=True, release="r2")
    varied = build_trace(info, options)
    assert build_trace(info).id == varied.id
    assert plain_ids == [o.id for o in varied.observations]

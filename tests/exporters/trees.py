"""Trace trees for the exporter tests.

Hand-made trees cover edge cases the builders do not make (every observation type, a tool with
an error status, trace input unlike the root's, a child whose root was sent earlier); the real
builders (``opstrail.tracing.build`` over ``opstrail.tracing.samples``) give the shapes opstrail
actually sends.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from opstrail import ids
from opstrail.tracing.tree import Cost, Level, Observation, ObservationType, Trace, Usage

T0 = datetime(2026, 8, 22, 10, 0, 0, 123456, tzinfo=UTC)


def _at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def chat_trace(message_id: str = "3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b") -> Trace:
    """A chat message: root chain, retrieval, tool, moderation, llm generation, suggestions."""
    trace_id = ids.trace_id(message_id)

    def oid(part: str) -> str:
        return ids.observation_id(ids.seed_message(message_id, part))

    root = oid("root")
    observations = (
        Observation(
            id=root,
            trace_id=trace_id,
            type=ObservationType.CHAIN,
            name="message",
            start_time=_at(0),
            end_time=_at(1500),
            input={"query": "What is the refund policy?", "inputs": {}},
            output="Refunds are accepted within 30 days.",
            metadata={"message_id": message_id, "conversation_mode": "chat"},
        ),
        Observation(
            id=oid("moderation:input"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.GUARDRAIL,
            name="moderation",
            start_time=_at(1),
            end_time=_at(20),
            input={"text": "What is the refund policy?"},
            output={"flagged": False, "action": "direct_output", "preset_response": ""},
            metadata={"stage": "input"},
        ),
        Observation(
            id=oid("retrieval"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.RETRIEVER,
            name="dataset_retrieval",
            start_time=_at(21),
            end_time=_at(80),
            input={"query": "refund policy"},
            output=[{"content": "Refunds within 30 days", "score": 0.91, "dataset_id": "d1"}],
            metadata={"top_k": 3, "score_threshold": 0.5, "nested": {"a": [1, 2]}},
        ),
        Observation(
            id=oid("tool:t1"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.TOOL,
            name="current_time",
            start_time=_at(81),
            end_time=_at(90),
            input={"timezone": "UTC"},
            output="2026-08-22 10:00:00",
            metadata={"tool_config": {"provider": "builtin"}, "time_cost": 0.009},
            level=Level.ERROR,
            status_message="tool timed out",
        ),
        Observation(
            id=oid("llm"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.GENERATION,
            name="llm",
            start_time=_at(100),
            end_time=_at(1400),
            input=[{"role": "user", "content": "What is the refund policy?"}],
            output={"role": "assistant", "content": "Refunds are accepted within 30 days."},
            model="gpt-4o-mini",
            model_parameters={
                "temperature": 0.2,
                "stop": ["\n\n"],
                "response_format": {"type": "text"},
            },
            usage=Usage(input=800, output=64, total=876, details={"input_cached_tokens": 12}),
            cost=Cost(total=0.00054, input=0.00041, output=0.00013),
            completion_start_time=_at(420),
            metadata={"provider": "openai"},
        ),
        Observation(
            id=oid("suggested"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.GENERATION,
            name="suggested_question",
            start_time=_at(1401),
            end_time=_at(1499),
            output=["How long does a refund take?", "Can I exchange instead?"],
            model="gpt-4o-mini",
            usage=Usage(input=100, output=20, total=120),
            metadata={},
            level=Level.WARNING,
            status_message="one suggestion dropped",
        ),
        Observation(
            id=oid("event"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.EVENT,
            name="marker",
            start_time=_at(1450),
            end_time=_at(1450),
        ),
        Observation(
            id=oid("agent"),
            trace_id=trace_id,
            parent_id=root,
            type=ObservationType.AGENT,
            name="agent",
            start_time=_at(10),
            end_time=_at(1300),
            version="agent-v2",
        ),
    )
    return Trace(
        id=trace_id,
        name=f"message_{message_id}",
        timestamp=_at(0),
        observations=observations,
        user_id="end-user-42",
        session_id="9c0e0d7e-conversation",
        tags=("message", "chat", "moderation", "dataset_retrieval", "tool"),
        metadata={
            "app_id": "app-1",
            "from_source": "api",
            "total_tokens": 996,
            "total_price": 0.00061,
            "cost_unpriced": False,
            "empty": None,
            "files": ["a.txt", "b.pdf"],
        },
        environment="production",
        release="2026.08",
        version="v7",
        input={"query": "What is the refund policy?"},
        output="Refunds are accepted within 30 days.",
    )


def workflow_trace(n_nodes: int = 50, run_id: str = "run-0001") -> Trace:
    """A workflow run: root chain with ``n_nodes`` node observations, every third an LLM."""
    trace_id = ids.trace_id(run_id)
    root = ids.observation_id(ids.seed_run(run_id))
    observations = [
        Observation(
            id=root,
            trace_id=trace_id,
            type=ObservationType.CHAIN,
            name=f"workflow_{run_id}",
            start_time=_at(0),
            end_time=_at(10 * n_nodes + 10),
            input={"sys.query": "summarise", "text": "lorem ipsum " * 20},
            output={"result": "done " * 20},
        )
    ]
    for n in range(n_nodes):
        is_llm = n % 3 == 0
        observations.append(
            Observation(
                id=ids.observation_id(ids.seed_node(f"{run_id}-node-{n}")),
                trace_id=trace_id,
                parent_id=root,
                type=ObservationType.GENERATION if is_llm else ObservationType.SPAN,
                name=f"node {n}",
                start_time=_at(10 * n + 1),
                end_time=_at(10 * n + 9),
                input={"text": f"input of node {n} " * 5, "index": n},
                output={"text": f"output of node {n} " * 5},
                metadata={"node_id": f"n{n}", "node_type": "llm" if is_llm else "code", "index": n},
                model="gpt-4o-mini" if is_llm else None,
                model_parameters={"temperature": 0.7} if is_llm else None,
                usage=Usage(input=120, output=30, total=150) if is_llm else None,
                cost=Cost(total=0.0001) if is_llm else None,
            )
        )
    return Trace(
        id=trace_id,
        name=f"workflow_{run_id}",
        timestamp=_at(0),
        observations=tuple(observations),
        user_id="end-user-7",
        tags=("workflow",),
        metadata={"app_id": "app-2", "workflow_run_id": run_id, "triggered_from": "app-run"},
        environment="production",
        version="3",
    )


def title_child_trace(conversation_id: str = "conv-1") -> Trace:
    """A conversation-title trace whose root was exported earlier: one child, no root."""
    trace_id = ids.trace_id(ids.seed_conversation_root(conversation_id))
    root = ids.observation_id(ids.seed_conversation_root(conversation_id))
    return Trace(
        id=trace_id,
        name="generate_name",
        timestamp=_at(0),
        observations=(
            Observation(
                id=ids.observation_id(ids.seed_conversation_name(conversation_id, 2)),
                trace_id=trace_id,
                parent_id=root,
                type=ObservationType.GENERATION,
                name="generate_name",
                start_time=_at(5),
                end_time=_at(50),
                input="hello there",
                output="Greeting",
                model="gpt-4o-mini",
                usage=Usage(input=10, output=2, total=12),
            ),
        ),
        session_id=conversation_id,
        tags=("generate_name",),
        external_parent_ids=frozenset({root}),
    )


def sample_traces() -> list[Trace]:
    """Every tree shape the exporters must handle: hand-made edge cases plus the real
    builder's output for every sample record."""
    return [chat_trace(), workflow_trace(12), title_child_trace(), *built_traces()]


BUILT_SAMPLES = (
    "chat_message",
    "agent_message",
    "completion_message",
    "flagged_message",
    "workflow_run",
    "branching_workflow_run",
    "failed_workflow_run",
    "stopped_workflow_run",
    "chatflow_run",
    "conversation_name",
)


def built_traces() -> list[Trace]:
    """``build_trace`` over every sample record of ``opstrail.tracing.samples``."""
    from opstrail.tracing import samples
    from opstrail.tracing.build import build_trace

    traces = [build_trace(getattr(samples, name)()) for name in BUILT_SAMPLES]
    traces.append(build_trace(chat_message_with_tool(message_id=samples.sample_uuid("tooled"))))
    # Two samples share one run id (the failed variant of the branching run): one batch must
    # not carry two different traces with the same id, so the failed one gets its own.
    failed = samples.failed_workflow_run(workflow_run_id=samples.sample_uuid("failed-run"))
    traces[BUILT_SAMPLES.index("failed_workflow_run")] = build_trace(failed)
    return traces


def chat_message_with_tool(**changes: Any) -> Any:
    """The sample chat message with retrieval, moderation, suggestions and a tool call."""
    from opstrail.tracing import samples

    message = samples.chat_message(**changes)
    tool = samples.tool_call(message_id=message.message_id, start=message.start_time)
    return replace(message, tool_calls=(tool,))

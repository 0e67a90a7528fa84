"""Chat, completion and agent-chat messages.

Tree (decisions.md, "Tree shapes"): root chain ``message`` (query and inputs in, answer out)
holding the input moderation guardrails, the retrievers, then either the ``llm`` generation or
the ``agent`` observation (one ``llm`` generation per reasoning round, each followed by the
tool calls that round chose), then the output moderation and the ``suggested_question``
generation. Usage and cost sit only on the generations.
"""

from __future__ import annotations

from opstrail import ids
from opstrail.tracing.builders.common import (
    call_observation,
    check_tree,
    context_metadata,
    observation,
    plain,
    resolve_trace_id,
    total_price_metadata,
    unique,
)
from opstrail.tracing.builders.moderation import moderation_observation
from opstrail.tracing.builders.options import BuildOptions
from opstrail.tracing.builders.retrieval import retrieval_observation
from opstrail.tracing.builders.suggested import suggested_observation
from opstrail.tracing.builders.tool import tool_observation
from opstrail.tracing.info import (
    MessageTraceInfo,
    ModelCall,
    ModerationStage,
    ToolTraceInfo,
)
from opstrail.tracing.levels import message_verdict
from opstrail.tracing.tree import Observation, ObservationType, Trace, new_trace
from opstrail.tracing.values import JsonValue


def message_trace_name(message_id: str, options: BuildOptions) -> str:
    """``message_<message_id>``, or ``message`` with low-cardinality names."""
    return "message" if options.low_cardinality_names else f"message_{message_id}"


def message_tags(info: MessageTraceInfo) -> tuple[str, ...]:
    """``message`` and the conversation mode, plus the tag of every kind the trace holds."""
    # ``_value_`` is what an enum's ``.value`` returns, minus the property call (hot path).
    tags = ["message", info.conversation_mode._value_]
    if info.moderations:
        tags.append("moderation")
    if info.dataset_retrievals:
        tags.append("dataset_retrieval")
    if info.tool_calls:
        tags.append("tool")
        tags.extend(tool.tool_name for tool in info.tool_calls)
    if info.suggested_question is not None:
        tags.append("suggested_question")
    return unique(tags)


def message_metadata(info: MessageTraceInfo) -> dict[str, JsonValue]:
    """Trace metadata: the seed's Metadata list for a message, the run context and totals."""
    meta: dict[str, JsonValue] = {
        **context_metadata(info.context),
        "conversation_id": info.conversation_id,
        "ls_provider": info.ls_provider,
        "ls_model_name": info.ls_model_name,
        "status": info.status._value_,
        "from_end_user_id": info.from_end_user_id,
        "from_account_id": info.from_account_id,
        "agent_based": info.agent_based,
        "workflow_run_id": info.workflow_run_id,
        "from_source": info.from_source._value_,
        "message_id": info.message_id,
        "conversation_mode": info.conversation_mode._value_,
        "total_tokens": info.total_tokens,
    }
    meta.update(total_price_metadata(info.total_price, info.currency))
    return meta


def _sub_kind_metadata(info: MessageTraceInfo) -> dict[str, JsonValue]:
    # The message-level keys the seed repeats in the Metadata of retrieval and suggestions.
    return {
        "message_id": info.message_id,
        "ls_provider": info.ls_provider,
        "ls_model_name": info.ls_model_name,
        "status": info.status._value_,
        "from_end_user_id": info.from_end_user_id,
        "from_account_id": info.from_account_id,
        "agent_based": info.agent_based,
        "workflow_run_id": info.workflow_run_id,
        "from_source": info.from_source._value_,
    }


def _summary_call(info: MessageTraceInfo) -> ModelCall | None:
    # A record without its model call still had one if tokens were spent: rebuild it from
    # the message's own counts, so the usage is not lost.
    if info.model_call is not None:
        return info.model_call
    if info.agent_rounds or info.total_tokens <= 0:
        return None
    return ModelCall(
        provider=info.ls_provider,
        model=info.ls_model_name or info.conversation_model,
        start_time=info.start_time,
        end_time=info.end_time,
        prompt_tokens=info.message_tokens,
        completion_tokens=info.answer_tokens,
        total_tokens=info.total_tokens,
        prompt_messages=info.query or None,
        completion=info.outputs,
        price=info.total_price,
        currency=info.currency,
        time_to_first_token=info.time_to_first_token,
        error=info.error,
    )


def _agent_subtree(info: MessageTraceInfo, trace_id: str, root_id: str) -> list[Observation]:
    agent_seed = ids.seed_message(info.message_id, "agent")
    agent_id = ids.observation_id(agent_seed)
    children: list[Observation] = []
    placed: set[str] = set()
    for agent_round in info.agent_rounds:
        children.append(
            call_observation(
                agent_round.model_call,
                trace_id=trace_id,
                seed=ids.seed_message(info.message_id, f"agent:{agent_round.position}"),
                name="llm",
                parent_id=agent_id,
                metadata={
                    "round": agent_round.position,
                    "thought": agent_round.thought,
                    "tool_names": list(agent_round.tool_names),
                },
            )
        )
        for tool in info.tool_calls:
            if tool.round == agent_round.position:
                children.append(tool_observation(tool, trace_id=trace_id, parent_id=agent_id))
                placed.add(tool.thought_id)
    children.extend(
        tool_observation(tool, trace_id=trace_id, parent_id=agent_id)
        for tool in info.tool_calls
        if tool.thought_id not in placed
    )
    start = min((c.start_time for c in children), default=info.start_time)
    end = max((c.end_time for c in children), default=info.end_time)
    agent = observation(
        trace_id=trace_id,
        seed=agent_seed,
        type_=ObservationType.AGENT,
        name="agent",
        start=start,
        end=end,
        parent_id=root_id,
        input_=info.query or plain(info.inputs),
        output=info.outputs,
        metadata={
            "rounds": len(info.agent_rounds),
            "tool_calls": len(info.tool_calls),
            "failed_tool_calls": sum(1 for t in info.tool_calls if t.error),
        },
        verdict=message_verdict(info.status, info.error),
        seed_id=agent_id,
    )
    return [agent, *children]


def _tools_without_agent(
    tools: tuple[ToolTraceInfo, ...], trace_id: str, root_id: str
) -> list[Observation]:
    return [tool_observation(tool, trace_id=trace_id, parent_id=root_id) for tool in tools]


def build_message_trace(info: MessageTraceInfo, options: BuildOptions) -> Trace:
    """The trace of one chat, completion or agent-chat message (see the module docstring).

    Raises:
        InvalidIdError: the caller's trace id breaks the id rules.
        TraceModelError: two observations would share an id.
    """
    trace_id, id_metadata = resolve_trace_id(info.message_id, info.context)
    name = message_trace_name(info.message_id, options)
    root_seed = ids.seed_message(info.message_id, "root")
    root_id = ids.observation_id(root_seed)
    root_input: dict[str, JsonValue] = {"query": info.query, "inputs": plain(info.inputs)}
    root = observation(
        trace_id=trace_id,
        seed=root_seed,
        type_=ObservationType.CHAIN,
        name="message",
        start=info.start_time,
        end=info.end_time,
        parent_id=None,
        input_=root_input,
        output=info.outputs,
        metadata={
            "message_data": plain(info.message_data),
            "message_file_data": plain(info.message_file_data),
            "file_list": list(info.file_list),
            "conversation_model": info.conversation_model,
            "message_tokens": info.message_tokens,
            "answer_tokens": info.answer_tokens,
            "total_tokens": info.total_tokens,
            "time_to_first_token": info.time_to_first_token,
            "error": info.error,
        },
        verdict=message_verdict(info.status, info.error),
        version=info.app_version,
        seed_id=root_id,
    )
    observations: list[Observation] = [root]
    for check in info.moderations:
        if check.stage is ModerationStage.INPUT:
            observations.append(
                moderation_observation(
                    check, trace_id=trace_id, parent_id=root_id, run_domain_id=info.message_id
                )
            )
    sub_meta = _sub_kind_metadata(info)
    for n, retrieval in enumerate(info.dataset_retrievals, start=1):
        # The first retrieval has the frozen seed; later ones (rare) are numbered from 2.
        part = "retrieval" if n == 1 else f"retrieval:{n}"
        observations.append(
            retrieval_observation(
                retrieval,
                trace_id=trace_id,
                seed=ids.seed_message(info.message_id, part),
                parent_id=root_id,
                base_metadata=sub_meta,
            )
        )
    if info.agent_rounds:
        observations.extend(_agent_subtree(info, trace_id, root_id))
    else:
        call = _summary_call(info)
        if call is not None:
            observations.append(
                call_observation(
                    call,
                    trace_id=trace_id,
                    seed=ids.seed_message(info.message_id, "llm"),
                    name="llm",
                    parent_id=root_id,
                )
            )
        observations.extend(_tools_without_agent(info.tool_calls, trace_id, root_id))
    for check in info.moderations:
        if check.stage is ModerationStage.OUTPUT:
            observations.append(
                moderation_observation(
                    check, trace_id=trace_id, parent_id=root_id, run_domain_id=info.message_id
                )
            )
    if info.suggested_question is not None:
        observations.append(
            suggested_observation(
                info.suggested_question,
                trace_id=trace_id,
                parent_id=root_id,
                base_metadata=sub_meta,
            )
        )
    return check_tree(
        new_trace(
            id=trace_id,
            name=name,
            timestamp=info.start_time,
            observations=tuple(observations),
            user_id=info.context.user_session_id or info.user_session_id,
            session_id=info.conversation_id,
            tags=message_tags(info),
            metadata={**message_metadata(info), **id_metadata},
            environment=info.context.environment,
            release=options.release,
            version=info.app_version,
            input=root.input,
            output=root.output,
            external_parent_ids=frozenset(),
        )
    )

"""Agent-chat apps: a function-calling loop over the app's tools.

Each round is one model call (recorded as an ``AgentRound``); the tools it asks for run one by
one, each recorded as a ``ToolTraceInfo`` (a failing tool keeps its error, and the error is fed
back to the model as the tool's answer). The last allowed round is offered no tools, so the
loop always ends with an answer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from opstrail.errors import RuntimeFailure
from opstrail.runtime.apps import steps
from opstrail.runtime.apps.common import (
    AgentThought,
    AnswerDelta,
    AnswerReplaced,
    RunCompleted,
    RunDeps,
    RunEvent,
    RunFailed,
    RunRecorder,
    RunRequest,
    StoredThought,
    relay,
)
from opstrail.runtime.dsl.model_config import AgentToolSpec, AppSpec
from opstrail.runtime.models.base import ChatMessage, ModelRequest, ToolCall, ToolSpec
from opstrail.runtime.models.calls import call_model, stream_call
from opstrail.runtime.prompt import build_messages
from opstrail.runtime.tools import ToolRunner, builtin_tools, parse_arguments
from opstrail.tracing.info import AgentRound, MessageStatus, ToolTraceInfo
from opstrail.tracing.values import JsonValue


def tool_setup(spec: AppSpec) -> tuple[ToolRunner, tuple[ToolSpec, ...], dict[str, AgentToolSpec]]:
    """The runner, the function specs offered to the model and the DSL entry of each tool.

    Tools opstrail cannot run are still offered (with their DSL parameters) so a model that
    picks one gets that tool's own error, as decisions.md asks.
    """
    available = builtin_tools()
    runnable = {}
    unavailable: dict[str, str] = {}
    specs: list[ToolSpec] = []
    entries: dict[str, AgentToolSpec] = {}
    for entry in spec.agent.tools:
        entries[entry.tool_name] = entry
        tool = available.get(entry.tool_name)
        if tool is not None:
            runnable[tool.name] = tool
            specs.append(ToolSpec(tool.name, tool.description, tool.parameters))
        else:
            unavailable[entry.tool_name] = (
                f"provider {entry.provider_id or 'unknown'} ({entry.provider_type}) is not "
                "installed in opstrail"
            )
            specs.append(
                ToolSpec(
                    entry.tool_name,
                    entry.label or entry.tool_name,
                    {
                        "type": "object",
                        "properties": {name: {"type": "string"} for name in entry.parameters},
                    },
                )
            )
    return ToolRunner(runnable, unavailable), tuple(specs), entries


def _json_value(value: Any) -> JsonValue:
    decoded: JsonValue = json.loads(json.dumps(value, ensure_ascii=False, default=str))
    return decoded


def _json_object(value: Mapping[str, Any]) -> dict[str, JsonValue]:
    return {str(k): _json_value(v) for k, v in value.items()}


def run_agent_chat(request: RunRequest, deps: RunDeps) -> Iterator[RunEvent]:
    """Run one agent-chat message; yields events, ends with ``RunCompleted``."""
    recorder = RunRecorder(request)
    spec = request.spec
    check = steps.moderate_input(recorder)
    if check is not None and check.flagged:
        if check.preset_response:
            yield AnswerDelta(check.preset_response)
        yield RunCompleted(recorder.finish(answer=check.preset_response,
                                           status=MessageStatus.NORMAL, error=None,
                                           error_code=None, moderation_flagged=True))
        return
    try:
        resolved = deps.models.resolve(spec.model.provider, spec.model.name)
    except RuntimeFailure as exc:
        yield RunFailed(exc.code, exc.message)
        yield RunCompleted(recorder.finish(answer="", status=MessageStatus.ERROR,
                                           error=exc.message, error_code=exc.code))
        return
    recorder.resolved = resolved
    context = steps.retrieve(recorder, deps)
    messages = build_messages(spec, inputs=request.inputs, query=request.query,
                              history=request.history, context=context)
    runner, tool_specs, entries = tool_setup(spec)
    params = {k: v for k, v in spec.model.completion_params.items() if k != "stop"}
    pending_tools: list[dict[str, Any]] = []
    answer = ""
    max_rounds = spec.agent.max_iteration if spec.agent.enabled else 1
    for position in range(1, max_rounds + 1):
        offer = tool_specs if spec.agent.enabled and position < max_rounds else ()
        model_request = ModelRequest(provider=resolved.provider, model=resolved.model,
                                     messages=tuple(messages), parameters=params, tools=offer)
        round_start = time.perf_counter()
        if request.stream:
            outcome = yield from relay(
                stream_call(resolved, model_request, should_stop=request.should_stop), AnswerDelta
            )
        else:
            outcome = call_model(resolved, model_request, stream=False)
        result = outcome.result
        tool_calls: tuple[ToolCall, ...] = result.tool_calls if result else ()
        recorder.rounds.append(AgentRound(position=position, model_call=outcome.record,
                                          thought=result.text if result else "",
                                          tool_names=tuple(c.name for c in tool_calls)))
        if outcome.error is not None or result is None:
            failure = outcome.error or RuntimeFailure("the model returned nothing",
                                                      code="completion_request_error")
            yield RunFailed(failure.code, failure.message)
            _build_tools(recorder, pending_tools, answer="")
            yield RunCompleted(recorder.finish(answer=answer, status=MessageStatus.ERROR,
                                               error=failure.message, error_code=failure.code))
            return
        answer += result.text
        thought_id = str(uuid.uuid4())
        created = datetime.now(UTC)
        if outcome.stopped:
            _build_tools(recorder, pending_tools, answer=answer)
            yield RunCompleted(recorder.finish(answer=answer, status=MessageStatus.STOPPED,
                                               error=None, error_code=None))
            return
        if not tool_calls:
            recorder.thoughts.append(_stored(thought_id, position, result.text, "", "", "",
                                             outcome.record, round_start, created))
            break
        tool_input = {c.name: _safe_args(c.arguments) for c in tool_calls}
        tool_names = ";".join(c.name for c in tool_calls)
        tool_input_text = json.dumps(tool_input, ensure_ascii=False)
        yield AgentThought(thought_id, position, result.text, tool_names, tool_input_text, "", created)
        messages.append(ChatMessage(role="assistant", content=result.text, tool_calls=tool_calls))
        observations: dict[str, str] = {}
        for call in tool_calls:
            pending_tools.append(_run_tool(runner, call, position, entries))
            observation = pending_tools[-1]["observation"]
            observations[call.name] = observation
            messages.append(ChatMessage(role="tool", content=observation, name=call.name,
                                        tool_call_id=call.id))
        observation_text = json.dumps(observations, ensure_ascii=False)
        yield AgentThought(thought_id, position, result.text, tool_names, tool_input_text,
                           observation_text, created)
        recorder.thoughts.append(_stored(thought_id, position, result.text, tool_names,
                                         tool_input_text, observation_text, outcome.record,
                                         round_start, created))
    final_answer = answer
    output_check = steps.moderate_output(recorder, final_answer)
    if output_check is not None and output_check.flagged:
        final_answer = output_check.preset_response
        yield AnswerReplaced(final_answer)
    if not request.stream:
        yield AnswerDelta(final_answer)
    _build_tools(recorder, pending_tools, answer=final_answer)
    steps.suggest(recorder, resolved, final_answer)
    yield RunCompleted(recorder.finish(answer=final_answer, status=MessageStatus.NORMAL,
                                       error=None, error_code=None))


def _safe_args(arguments: str) -> JsonValue:
    try:
        return _json_value(parse_arguments(arguments))
    except RuntimeFailure:
        return arguments


def _stored(thought_id: str, position: int, thought: str, tool: str, tool_input: str,
            observation: str, record: Any, round_start: float, created: datetime) -> StoredThought:
    return StoredThought(
        id=thought_id, position=position, thought=thought, tool=tool, tool_input=tool_input,
        observation=observation, prompt_tokens=record.prompt_tokens,
        answer_tokens=record.completion_tokens, total_price=record.price,
        latency=time.perf_counter() - round_start, created_at=created,
    )


def _run_tool(runner: ToolRunner, call: ToolCall, position: int,
              entries: Mapping[str, AgentToolSpec]) -> dict[str, Any]:
    start = datetime.now(UTC)
    started = time.perf_counter()
    error: str | None = None
    arguments: dict[str, Any] = {}
    try:
        arguments = parse_arguments(call.arguments)
        output = runner.run(call.name, arguments)
    except RuntimeFailure as exc:
        error = exc.message
        output = ""
    entry = entries.get(call.name)
    return {
        "name": call.name,
        "arguments": arguments if arguments else {"raw": call.arguments} if call.arguments.strip() not in ("", "{}") else {},
        "output": output,
        "error": error,
        "observation": output if error is None else f"Error: {error}",
        "start": start,
        "end": datetime.now(UTC),
        "time_cost": time.perf_counter() - started,
        "position": position,
        "thought_id": str(uuid.uuid4()),
        "config": {
            "provider_id": entry.provider_id if entry else "",
            "provider_type": entry.provider_type if entry else "",
            "tool_label": entry.label if entry else call.name,
        },
        "parameters": dict(entry.parameters) if entry else {},
    }


def _build_tools(recorder: RunRecorder, pending: list[dict[str, Any]], *, answer: str) -> None:
    request = recorder.request
    context = request.context
    role = "account" if context.from_account_id else "end_user"
    for item in pending:
        recorder.tools.append(
            ToolTraceInfo(
                message_id=request.message_id,
                tool_name=item["name"],
                start_time=item["start"],
                end_time=item["end"],
                tool_inputs=_json_object(item["arguments"]),
                tool_outputs=item["output"] if item["error"] is None else item["observation"],
                message_data=recorder.message_data(),
                error=item["error"],
                inputs=_json_object(request.inputs),
                outputs=answer,
                tool_config=item["config"],
                time_cost=item["time_cost"],
                tool_parameters=_json_object(item["parameters"]),
                file_url=None,
                thought_id=item["thought_id"],
                round=item["position"],
                message_file_id=None,
                created_by_role=role,
                created_user_id=context.from_account_id or context.from_end_user_id,
            )
        )
    pending.clear()

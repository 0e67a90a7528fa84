"""Tool calls of an agent: a ``tool`` observation named after the tool."""

from __future__ import annotations

from opstrail import ids
from opstrail.tracing.builders.common import observation, plain
from opstrail.tracing.info import ToolTraceInfo
from opstrail.tracing.levels import error_verdict
from opstrail.tracing.tree import Observation, ObservationType
from opstrail.tracing.values import JsonValue


def tool_metadata(
    tool: ToolTraceInfo, tool_inputs: JsonValue | None = None
) -> dict[str, JsonValue]:
    """Every Metadata field the seed lists for a tool call, plus what locates it.
    ``tool_inputs`` is ``plain(tool.tool_inputs)`` when the caller has it already."""
    return {
        "message_id": tool.message_id,
        "tool_name": tool.tool_name,
        "tool_inputs": plain(tool.tool_inputs) if tool_inputs is None else tool_inputs,
        "tool_outputs": tool.tool_outputs,
        "tool_config": plain(tool.tool_config),
        "time_cost": tool.time_cost,
        "error": tool.error,
        "tool_parameters": plain(tool.tool_parameters),
        "message_file_id": tool.message_file_id,
        "created_by_role": tool.created_by_role,
        "created_user_id": tool.created_user_id,
        "file_url": tool.file_url,
        "thought_id": tool.thought_id,
        "round": tool.round,
    }


def tool_observation(tool: ToolTraceInfo, *, trace_id: str, parent_id: str) -> Observation:
    """The tool call: its inputs in, its outputs out, ERROR with its own error if it failed."""
    tool_inputs = plain(tool.tool_inputs)
    return observation(
        trace_id=trace_id,
        seed=ids.seed_message(tool.message_id, f"tool:{tool.thought_id}"),
        type_=ObservationType.TOOL,
        name=tool.tool_name,
        start=tool.start_time,
        end=tool.end_time,
        parent_id=parent_id,
        input_=tool_inputs,
        output=tool.tool_outputs,
        metadata=tool_metadata(tool, tool_inputs),
        verdict=error_verdict(tool.error),
    )

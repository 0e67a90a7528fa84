"""Conversation titles: one ``generate_name`` trace per conversation.

The trace id comes from ``conv:<conversation_id>``; its root (a ``chain`` named
``generate_name``) is exported once, with the first title (sequence 1). Every title generation,
the first included, is a child ``generation`` ``generate_name`` seeded
``conv:<conversation_id>:name:<sequence>``. A later record (sequence 2, 3...) builds a trace
holding only its new child, whose parent is listed in ``external_parent_ids``.
"""

from __future__ import annotations

from opstrail import ids
from opstrail.errors import TraceModelError
from opstrail.tracing.builders.common import check_tree, context_metadata, observation
from opstrail.tracing.builders.options import BuildOptions
from opstrail.tracing.info import GenerateNameTraceInfo
from opstrail.tracing.levels import error_verdict
from opstrail.tracing.tree import Observation, ObservationType, Trace, new_trace
from opstrail.tracing.values import JsonValue

TITLE_TRACE_NAME = "generate_name"


def title_metadata(info: GenerateNameTraceInfo) -> dict[str, JsonValue]:
    """Trace metadata: the seed's ``conversation_id`` and ``tenant_id``, plus the context."""
    return {
        **context_metadata(info.context),
        "conversation_id": info.conversation_id,
        "tenant_id": info.tenant_id,
    }


def build_title_trace(info: GenerateNameTraceInfo, options: BuildOptions) -> Trace:
    """The conversation's title trace, or only its new child for a later title.

    Raises:
        TraceModelError: ``sequence`` is below 1.
    """
    if info.sequence < 1:
        raise TraceModelError(f"title sequence must start at 1 (got {info.sequence})")
    root_seed = ids.seed_conversation_root(info.conversation_id)
    trace_id = ids.trace_id(root_seed)
    root_id = ids.observation_id(root_seed)
    child_seed = ids.seed_conversation_name(info.conversation_id, info.sequence)
    child_meta: dict[str, JsonValue] = {"sequence": info.sequence, "error": info.error}
    call = info.model_call
    # The rendered prompt when the call was recorded, else the record's inputs.
    prompt = call.prompt_messages if call is not None and call.prompt_messages is not None else None
    child = observation(
        trace_id=trace_id,
        seed=child_seed,
        type_=ObservationType.GENERATION,
        name=TITLE_TRACE_NAME,
        start=info.start_time,
        end=info.end_time,
        parent_id=root_id,
        input_=prompt if prompt is not None else info.inputs,
        output=info.outputs,
        metadata=child_meta,
        verdict=error_verdict(info.error or (call.error if call is not None else None)),
        model_call=call,
    )
    observations: list[Observation] = [child]
    external: frozenset[str] = frozenset({root_id})
    trace_input: JsonValue = None
    trace_output: JsonValue = None
    if info.sequence == 1:
        root = observation(
            trace_id=trace_id,
            seed=root_seed,
            type_=ObservationType.CHAIN,
            name=TITLE_TRACE_NAME,
            start=info.start_time,
            end=info.end_time,
            parent_id=None,
            input_=info.inputs,
            output=info.outputs,
            metadata={"conversation_id": info.conversation_id},
            verdict=error_verdict(info.error),
            seed_id=root_id,
        )
        observations.insert(0, root)
        external = frozenset()
        trace_input, trace_output = root.input, root.output
    return check_tree(
        new_trace(
            id=trace_id,
            name=TITLE_TRACE_NAME,
            timestamp=info.start_time,
            observations=tuple(observations),
            user_id=info.context.user_session_id,
            session_id=info.conversation_id,
            tags=(TITLE_TRACE_NAME,),
            metadata=title_metadata(info),
            environment=info.context.environment,
            release=options.release,
            version=None,
            input=trace_input,
            output=trace_output,
            external_parent_ids=external,
        )
    )

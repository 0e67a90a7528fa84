"""Trace trees -> the JSON body of ``POST /api/public/ingestion`` (pure; contract §4).

The dialect of decisions.md ("Delivery: legacy dialect"), readable by v2 and v3 servers:

* only ``trace-create``, ``span-create``, ``generation-create`` and ``event-create``;
* ``tool``, ``retriever``, ``guardrail`` and ``chain`` become ``span-create`` and ``agent`` a
  ``generation-create``; the intended type goes into metadata ``observation_type``. One
  exception keeps the "no field lost" rule: a span-mapped observation that carries a model,
  usage, cost or completion start time becomes a ``generation-create`` (a span body has no such
  fields and the server would strip them silently);
* usage as ``usage`` ``{input, output, total, unit: "TOKENS", inputCost, outputCost,
  totalCost}`` for v2, plus ``usageDetails``/``costDetails`` for v3;
* ``environment`` on every body and also in metadata (v2 has no environment field);
* deterministic event ids (``opstrail.ids.event_id``) and envelope timestamps taken from the
  trace, so a re-sent batch is byte-for-byte the same;
* ``id``, ``traceId``, ``startTime``, ``endTime`` (not on events) and ``parentObservationId``
  on every observation; a trace without its root (``external_parent_ids``) gets no
  ``trace-create``.

Metadata keys the dialect adds (``observation_type``, ``environment``) never overwrite a key the
trace already has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opstrail import __version__
from opstrail.exporters.fields import (
    SDK_NAME,
    cost_details,
    iso_z,
    model_parameters,
    usage_details,
)
from opstrail.ids import event_id
from opstrail.tracing.tree import Observation, ObservationType, Trace
from opstrail.tracing.values import JsonValue

__all__ = [
    "OBSERVATION_TYPE_KEY",
    "EncodedBatch",
    "encode_batch",
    "encode_events",
    "encode_trace_events",
]

OBSERVATION_TYPE_KEY: Final = "observation_type"
ENVIRONMENT_KEY: Final = "environment"

TRACE_CREATE: Final = "trace-create"
SPAN_CREATE: Final = "span-create"
GENERATION_CREATE: Final = "generation-create"
EVENT_CREATE: Final = "event-create"

# Wire event type per observation type; the value after the comma says whether the intended
# type must be kept in metadata (v2 knows only SPAN, GENERATION and EVENT).
_EVENT_TYPES: Final[Mapping[ObservationType, tuple[str, bool]]] = {
    ObservationType.SPAN: (SPAN_CREATE, False),
    ObservationType.GENERATION: (GENERATION_CREATE, False),
    ObservationType.EVENT: (EVENT_CREATE, False),
    ObservationType.AGENT: (GENERATION_CREATE, True),
    ObservationType.TOOL: (SPAN_CREATE, True),
    ObservationType.RETRIEVER: (SPAN_CREATE, True),
    ObservationType.GUARDRAIL: (SPAN_CREATE, True),
    ObservationType.CHAIN: (SPAN_CREATE, True),
}

# A JSON object for the wire; values are JSON values built here.
WireObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A legacy batch plus which trace each event belongs to (to read a 207 per trace)."""

    body: WireObject
    trace_of_event: Mapping[str, str]


def _metadata(
    metadata: Mapping[str, JsonValue], extra: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    merged = dict(metadata)
    for key, value in extra.items():
        merged.setdefault(key, value)
    return merged


def _is_generation_body(obs: Observation) -> bool:
    return (
        obs.model is not None
        or obs.usage is not None
        or obs.cost is not None
        or obs.completion_start_time is not None
        or obs.model_parameters is not None
    )


def _observation_event(obs: Observation, trace: Trace) -> WireObject:
    event_type, keep_type = _EVENT_TYPES[obs.type]
    if event_type == SPAN_CREATE and _is_generation_body(obs):
        event_type = GENERATION_CREATE
    extra: dict[str, JsonValue] = {ENVIRONMENT_KEY: trace.environment}
    if keep_type:
        extra = {OBSERVATION_TYPE_KEY: obs.type.value, **extra}
    body: WireObject = {
        "id": obs.id,
        "traceId": obs.trace_id,
        "name": obs.name,
        "startTime": iso_z(obs.start_time),
    }
    if event_type != EVENT_CREATE:
        body["endTime"] = iso_z(obs.end_time)
    if obs.parent_id is not None:
        body["parentObservationId"] = obs.parent_id
    body["environment"] = trace.environment
    body["metadata"] = _metadata(obs.metadata, extra)
    body["level"] = obs.level.value
    if obs.status_message is not None:
        body["statusMessage"] = obs.status_message
    version = obs.version if obs.version is not None else trace.version
    if version is not None:
        body["version"] = version
    if obs.input is not None:
        body["input"] = obs.input
    if obs.output is not None:
        body["output"] = obs.output
    if event_type == GENERATION_CREATE:
        if obs.model is not None:
            body["model"] = obs.model
        if obs.model_parameters is not None:
            body["modelParameters"] = model_parameters(obs.model_parameters)
        if obs.completion_start_time is not None:
            body["completionStartTime"] = iso_z(obs.completion_start_time)
        if obs.usage is not None:
            usage: WireObject = {
                "input": obs.usage.input,
                "output": obs.usage.output,
                "total": obs.usage.total,
                "unit": "TOKENS",
            }
            if obs.cost is not None:
                if obs.cost.input is not None:
                    usage["inputCost"] = obs.cost.input
                if obs.cost.output is not None:
                    usage["outputCost"] = obs.cost.output
                usage["totalCost"] = obs.cost.total
            body["usage"] = usage
            body["usageDetails"] = usage_details(obs.usage)
        if obs.cost is not None:
            body["costDetails"] = cost_details(obs.cost)
    return {
        "id": event_id(obs.id, event_type),
        "type": event_type,
        "timestamp": iso_z(obs.end_time),
        "body": body,
    }


def _trace_event(trace: Trace) -> WireObject:
    body: WireObject = {
        "id": trace.id,
        "timestamp": iso_z(trace.timestamp),
        "name": trace.name,
        "environment": trace.environment,
        "metadata": _metadata(trace.metadata, {ENVIRONMENT_KEY: trace.environment}),
    }
    if trace.user_id is not None:
        body["userId"] = trace.user_id
    if trace.session_id is not None:
        body["sessionId"] = trace.session_id
    body["tags"] = list(trace.tags)
    if trace.release is not None:
        body["release"] = trace.release
    if trace.version is not None:
        body["version"] = trace.version
    root = trace.root
    trace_input = trace.input if trace.input is not None else (root.input if root else None)
    trace_output = trace.output if trace.output is not None else (root.output if root else None)
    if trace_input is not None:
        body["input"] = trace_input
    if trace_output is not None:
        body["output"] = trace_output
    return {
        "id": event_id(trace.id, TRACE_CREATE),
        "type": TRACE_CREATE,
        "timestamp": iso_z(trace.timestamp),
        "body": body,
    }


def encode_trace_events(trace: Trace) -> list[WireObject]:
    """The events of one trace: ``trace-create`` (when the root is in it), then one
    ``*-create`` per observation, root first."""
    events = [_observation_event(obs, trace) for obs in trace.observations]
    if trace.root is not None:
        events.insert(0, _trace_event(trace))
    return events


def batch_metadata(batch_size: int) -> WireObject:
    """The envelope ``metadata`` (only used by Langfuse for SDK debugging)."""
    return {"sdk_name": SDK_NAME, "sdk_version": __version__, "batch_size": batch_size}


def encode_events(traces: Sequence[Trace]) -> EncodedBatch:
    """Encode ``traces`` as one batch and remember each event's trace id."""
    events: list[WireObject] = []
    trace_of_event: dict[str, str] = {}
    for trace in traces:
        for event in encode_trace_events(trace):
            trace_of_event[event["id"]] = trace.id
            events.append(event)
    return EncodedBatch(
        body={"batch": events, "metadata": batch_metadata(len(events))},
        trace_of_event=trace_of_event,
    )


def encode_batch(traces: Sequence[Trace]) -> WireObject:
    """Encode ``traces`` as the JSON body of ``POST /api/public/ingestion``.

    Returns:
        ``{"batch": [events…], "metadata": {…}}``, ready for ``json.dumps``.
    """
    return encode_events(traces).body

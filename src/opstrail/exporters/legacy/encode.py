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
from opstrail.tracing.tree import Level, Observation, ObservationType, Trace
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


# Plain-string values of the enums that go on the wire (an enum's ``.value`` is a Python-level
# property: looked up here instead, once per event).
_TYPE_VALUES: Final[Mapping[ObservationType, str]] = {kind: kind.value for kind in ObservationType}
_LEVEL_VALUES: Final[Mapping[Level, str]] = {level: level.value for level in Level}


def _metadata(
    metadata: Mapping[str, JsonValue], extra: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    merged = dict(metadata)
    for key, value in extra.items():
        merged.setdefault(key, value)
    return merged


def _observation_event(obs: Observation, trace: Trace) -> WireObject:
    event_type, keep_type = _EVENT_TYPES[obs.type]
    if event_type == SPAN_CREATE and (
        obs.model is not None
        or obs.usage is not None
        or obs.cost is not None
        or obs.completion_start_time is not None
        or obs.model_parameters is not None
    ):
        event_type = GENERATION_CREATE  # a span body would lose these fields
    environment = trace.environment
    # Each distinct time is formatted once: the envelope timestamp is the end time, and an
    # event's start is usually its end.
    end_time = iso_z(obs.end_time)
    start_time = end_time if obs.start_time == obs.end_time else iso_z(obs.start_time)
    body: WireObject = {
        "id": obs.id,
        "traceId": obs.trace_id,
        "name": obs.name,
        "startTime": start_time,
    }
    if event_type != EVENT_CREATE:
        body["endTime"] = end_time
    if obs.parent_id is not None:
        body["parentObservationId"] = obs.parent_id
    body["environment"] = environment
    # Metadata keys the dialect adds never overwrite the observation's own (_metadata).
    metadata = dict(obs.metadata)
    if keep_type:
        metadata.setdefault(OBSERVATION_TYPE_KEY, _TYPE_VALUES[obs.type])
    metadata.setdefault(ENVIRONMENT_KEY, environment)
    body["metadata"] = metadata
    body["level"] = _LEVEL_VALUES[obs.level]
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
        _generation_fields(body, obs)
    return {
        "id": event_id(obs.id, event_type),
        "type": event_type,
        "timestamp": end_time,
        "body": body,
    }


def _generation_fields(body: WireObject, obs: Observation) -> None:
    """Model, parameters, completion start, usage and cost of a generation-create body."""
    if obs.model is not None:
        body["model"] = obs.model
    if obs.model_parameters is not None:
        body["modelParameters"] = model_parameters(obs.model_parameters)
    if obs.completion_start_time is not None:
        body["completionStartTime"] = iso_z(obs.completion_start_time)
    usage, cost = obs.usage, obs.cost
    if usage is not None:
        wire_usage: WireObject = {
            "input": usage.input,
            "output": usage.output,
            "total": usage.total,
            "unit": "TOKENS",
        }
        if cost is not None:
            if cost.input is not None:
                wire_usage["inputCost"] = cost.input
            if cost.output is not None:
                wire_usage["outputCost"] = cost.output
            wire_usage["totalCost"] = cost.total
        body["usage"] = wire_usage
        body["usageDetails"] = usage_details(usage)
    if cost is not None:
        body["costDetails"] = cost_details(cost)


def _trace_event(trace: Trace, root: Observation | None) -> WireObject:
    timestamp = iso_z(trace.timestamp)
    body: WireObject = {
        "id": trace.id,
        "timestamp": timestamp,
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
    trace_input = trace.input if trace.input is not None else (root.input if root else None)
    trace_output = trace.output if trace.output is not None else (root.output if root else None)
    if trace_input is not None:
        body["input"] = trace_input
    if trace_output is not None:
        body["output"] = trace_output
    return {
        "id": event_id(trace.id, TRACE_CREATE),
        "type": TRACE_CREATE,
        "timestamp": timestamp,
        "body": body,
    }


def encode_trace_events(trace: Trace) -> list[WireObject]:
    """The events of one trace: ``trace-create`` (when the root is in it), then one
    ``*-create`` per observation, root first."""
    root = trace.root
    events = [] if root is None else [_trace_event(trace, root)]
    events += [_observation_event(obs, trace) for obs in trace.observations]
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

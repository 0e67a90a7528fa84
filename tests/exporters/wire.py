"""Read requests back the way Langfuse reads them, and compare them with the trace tree.

``check_otlp`` and ``check_legacy`` assert that every field of the tree arrives, apart from the
documented moves (the docstring of ``opstrail.exporters``):

* OTLP: trace metadata travels as one attribute per key, scalars natively and other values as
  JSON text, ``None`` values omitted; the trace timestamp is the root span's start time;
  trace input/output go on the root observation (or ``langfuse.trace.input/output`` when they
  differ from the root's own); ``Usage``/``Cost`` as JSON objects.
* legacy: ``observation_type`` and ``environment`` added to metadata; tool/retriever/guardrail/
  chain as span events (generation events when they carry a model, usage or cost), agent as a
  generation event.
* both: model parameters that are not a Langfuse ``MapValue`` travel as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from opstrail import __version__
from opstrail.exporters.fields import (
    cost_details,
    is_scalar,
    iso_z,
    json_text,
    model_parameters,
    observation_text,
    unix_nanos,
    usage_details,
)
from opstrail.exporters.legacy.encode import OBSERVATION_TYPE_KEY
from opstrail.tracing.tree import Level, ObservationType, Trace

TRACE_WIDE_KEYS = {
    "langfuse.trace.name",
    "user.id",
    "session.id",
    "langfuse.trace.tags",
    "langfuse.release",
    "langfuse.environment",
}
OBSERVATION_KEYS = {
    "langfuse.observation.type",
    "langfuse.observation.level",
    "langfuse.observation.status_message",
    "langfuse.observation.input",
    "langfuse.observation.output",
    "langfuse.observation.metadata",
    "langfuse.observation.model.name",
    "langfuse.observation.model.parameters",
    "langfuse.observation.usage_details",
    "langfuse.observation.cost_details",
    "langfuse.observation.completion_start_time",
    "langfuse.version",
    "langfuse.trace.input",
    "langfuse.trace.output",
}
JSON_STRING_KEYS = {
    "langfuse.observation.metadata",
    "langfuse.observation.model.parameters",
    "langfuse.observation.usage_details",
    "langfuse.observation.cost_details",
}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def attributes(span: Span) -> dict[str, Any]:
    """A span's attributes as a dict; asserts no key repeats."""
    keys = [kv.key for kv in span.attributes]
    assert len(keys) == len(set(keys)), f"repeated attribute keys in {span.name}"
    return {kv.key: any_value(kv.value) for kv in span.attributes}


def _metadata_attr(value: Any) -> Any:
    return value if is_scalar(value) else json_text(value)


def check_otlp(request: ExportTraceServiceRequest, traces: list[Trace]) -> None:
    """Assert that ``request`` carries ``traces`` completely (see the module docstring)."""
    assert len(request.resource_spans) == 1
    resource_spans = request.resource_spans[0]
    resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
    assert resource == {"service.name": "opstrail"}
    assert len(resource_spans.scope_spans) == 1
    scope_spans = resource_spans.scope_spans[0]
    assert scope_spans.scope.name == "opstrail"
    assert not scope_spans.scope.name.startswith("langfuse-sdk")
    assert scope_spans.scope.version == __version__
    spans = list(scope_spans.spans)
    assert len(spans) == sum(len(t.observations) for t in traces)
    by_id = {(span.trace_id.hex(), span.span_id.hex()): span for span in spans}
    for trace in traces:
        for obs in trace.observations:
            span = by_id[(trace.id, obs.id)]
            _check_span(span, obs, trace)


def _check_span(span: Span, obs: Any, trace: Trace) -> None:
    assert span.trace_id.hex() == trace.id == span.trace_id.hex().lower()
    assert len(span.trace_id) == 16 and len(span.span_id) == 8
    assert span.span_id.hex() == obs.id
    assert span.parent_span_id.hex() == (obs.parent_id or "")
    assert span.name == obs.name
    assert span.kind == Span.SpanKind.SPAN_KIND_INTERNAL
    assert span.start_time_unix_nano == unix_nanos(obs.start_time)
    assert span.end_time_unix_nano == unix_nanos(obs.end_time)
    attrs = attributes(span)
    # Only langfuse.* plus user.id/session.id, so Langfuse's mapping is unambiguous.
    for key in attrs:
        assert key.startswith("langfuse.") or key in ("user.id", "session.id"), key
        assert (
            key in TRACE_WIDE_KEYS
            or key in OBSERVATION_KEYS
            or key.startswith("langfuse.trace.metadata.")
            or key.startswith("langfuse.observation.metadata.")
        ), key
    for key in JSON_STRING_KEYS & attrs.keys():
        assert isinstance(attrs[key], str)
        json.loads(attrs[key])

    # Trace-wide, on every span.
    assert attrs["langfuse.trace.name"] == trace.name
    assert attrs.get("user.id") == trace.user_id
    assert attrs.get("session.id") == trace.session_id
    assert attrs.get("langfuse.trace.tags", []) == list(trace.tags)
    assert attrs.get("langfuse.release") == trace.release
    assert attrs["langfuse.environment"] == trace.environment
    trace_metadata = {
        key.removeprefix("langfuse.trace.metadata."): value
        for key, value in attrs.items()
        if key.startswith("langfuse.trace.metadata.")
    }
    expected_trace_metadata = {
        k: _metadata_attr(v) for k, v in trace.metadata.items() if v is not None
    }
    assert trace_metadata == expected_trace_metadata
    assert attrs.get("langfuse.version") == (
        obs.version if obs.version is not None else trace.version
    )

    # Observation fields.
    assert attrs["langfuse.observation.type"] == obs.type.value
    assert attrs["langfuse.observation.level"] == obs.level.value
    assert attrs.get("langfuse.observation.status_message") == obs.status_message
    expected_input, expected_output = obs.input, obs.output
    if obs.parent_id is None:
        if expected_input is None:
            expected_input = trace.input
        elif trace.input is not None and trace.input != obs.input:
            assert attrs["langfuse.trace.input"] == observation_text(trace.input)
        if expected_output is None:
            expected_output = trace.output
        elif trace.output is not None and trace.output != obs.output:
            assert attrs["langfuse.trace.output"] == observation_text(trace.output)
    _assert_text(attrs.get("langfuse.observation.input"), expected_input)
    _assert_text(attrs.get("langfuse.observation.output"), expected_output)
    if obs.metadata:
        assert attrs["langfuse.observation.metadata"] == json_text(obs.metadata)
        for key, value in obs.metadata.items():
            if is_scalar(value):
                assert attrs[f"langfuse.observation.metadata.{key}"] == value
    else:
        assert "langfuse.observation.metadata" not in attrs
    assert attrs.get("langfuse.observation.model.name") == obs.model
    if obs.model_parameters is None:
        assert "langfuse.observation.model.parameters" not in attrs
    else:
        assert json.loads(attrs["langfuse.observation.model.parameters"]) == json.loads(
            json_text(model_parameters(obs.model_parameters))
        )
    if obs.usage is None:
        assert "langfuse.observation.usage_details" not in attrs
    else:
        usage = json.loads(attrs["langfuse.observation.usage_details"])
        assert usage == usage_details(obs.usage)
        assert usage["total"] == obs.usage.total
    if obs.cost is None:
        assert "langfuse.observation.cost_details" not in attrs
    else:
        cost = json.loads(attrs["langfuse.observation.cost_details"])
        assert cost == cost_details(obs.cost) and "total" in cost
    if obs.completion_start_time is None:
        assert "langfuse.observation.completion_start_time" not in attrs
    else:
        text = attrs["langfuse.observation.completion_start_time"]
        assert text.endswith("Z")
        assert datetime.fromisoformat(text) == obs.completion_start_time
    if obs.level is Level.ERROR:
        assert span.status.code == Status.StatusCode.STATUS_CODE_ERROR
        assert span.status.message == (obs.status_message or "")
    else:
        assert span.status.code == Status.StatusCode.STATUS_CODE_UNSET


def _assert_text(actual: Any, value: Any) -> None:
    if value is None:
        assert actual is None
    else:
        assert actual == observation_text(value)
        if not isinstance(value, str):
            assert json.loads(actual) == json.loads(json_text(value))


def _time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def _with_extra(metadata: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(metadata)
    for key, value in extra.items():
        merged.setdefault(key, value)
    return merged


def _json(value: Any) -> Any:
    """A value as it reads after JSON: what the server stores."""
    return json.loads(json_text(value))


def check_legacy(body: Mapping[str, Any], traces: list[Trace]) -> None:
    """Assert that the batch ``body`` carries ``traces`` completely (see the module docstring)."""
    events = body["batch"]
    assert body["metadata"]["sdk_name"] == "opstrail"
    assert body["metadata"]["batch_size"] == len(events)
    assert len({e["id"] for e in events}) == len(events), "event ids must be unique"
    allowed = {"trace-create", "span-create", "generation-create", "event-create"}
    assert {e["type"] for e in events} <= allowed
    trace_events = {e["body"]["id"]: e for e in events if e["type"] == "trace-create"}
    observation_events = {
        (e["body"]["traceId"], e["body"]["id"]): e for e in events if e["type"] != "trace-create"
    }
    assert len(observation_events) == sum(len(t.observations) for t in traces)
    for trace in traces:
        root = trace.root
        if root is None:
            assert trace.id not in trace_events
        else:
            _check_trace_event(trace_events[trace.id], trace)
        for obs in trace.observations:
            _check_observation_event(observation_events[(trace.id, obs.id)], obs, trace)


def _check_trace_event(event: Mapping[str, Any], trace: Trace) -> None:
    body = event["body"]
    assert _time(event["timestamp"]) == trace.timestamp
    assert body["id"] == trace.id
    assert _time(body["timestamp"]) == trace.timestamp
    assert body["name"] == trace.name
    assert body.get("userId") == trace.user_id
    assert body.get("sessionId") == trace.session_id
    assert body["tags"] == list(trace.tags)
    assert body["environment"] == trace.environment
    assert body.get("release") == trace.release
    assert body.get("version") == trace.version
    assert body["metadata"] == _json(
        _with_extra(trace.metadata, {"environment": trace.environment})
    )
    root = trace.root
    assert root is not None
    expected_input = trace.input if trace.input is not None else root.input
    expected_output = trace.output if trace.output is not None else root.output
    assert body.get("input") == _json(expected_input)
    assert body.get("output") == _json(expected_output)


_SPAN_LIKE = {
    ObservationType.TOOL,
    ObservationType.RETRIEVER,
    ObservationType.GUARDRAIL,
    ObservationType.CHAIN,
}


def _check_observation_event(event: Mapping[str, Any], obs: Any, trace: Trace) -> None:
    body = event["body"]
    carries_model = any(
        v is not None
        for v in (obs.model, obs.usage, obs.cost, obs.completion_start_time, obs.model_parameters)
    )
    expected_type = {
        ObservationType.SPAN: "span-create",
        ObservationType.GENERATION: "generation-create",
        ObservationType.EVENT: "event-create",
        ObservationType.AGENT: "generation-create",
    }.get(obs.type, "span-create")
    if expected_type == "span-create" and carries_model:
        expected_type = "generation-create"
    assert event["type"] == expected_type
    assert body["id"] == obs.id
    assert body["traceId"] == trace.id
    assert body["name"] == obs.name
    assert _time(body["startTime"]) == obs.start_time
    if event["type"] == "event-create":
        assert "endTime" not in body  # an event is a point in time: its start
    else:
        assert _time(body["endTime"]) == obs.end_time
    assert body.get("parentObservationId") == obs.parent_id
    assert body["environment"] == trace.environment
    assert body["level"] == obs.level.value
    assert body.get("statusMessage") == obs.status_message
    assert body.get("version") == (obs.version if obs.version is not None else trace.version)
    extra: dict[str, Any] = {}
    if obs.type in _SPAN_LIKE or obs.type is ObservationType.AGENT:
        extra[OBSERVATION_TYPE_KEY] = obs.type.value
    extra["environment"] = trace.environment
    assert body["metadata"] == _json(_with_extra(obs.metadata, extra))
    assert body.get("input") == _json(obs.input)
    assert body.get("output") == _json(obs.output)
    if event["type"] != "generation-create":
        return
    assert body.get("model") == obs.model
    if obs.model_parameters is not None:
        assert body["modelParameters"] == _json(model_parameters(obs.model_parameters))
    if obs.completion_start_time is not None:
        assert _time(body["completionStartTime"]) == obs.completion_start_time
    if obs.usage is not None:
        usage = body["usage"]
        assert (usage["input"], usage["output"], usage["total"], usage["unit"]) == (
            obs.usage.input,
            obs.usage.output,
            obs.usage.total,
            "TOKENS",
        )
        assert body.get("usageDetails") == usage_details(obs.usage)
        if obs.cost is not None:
            assert usage["totalCost"] == obs.cost.total
            assert usage.get("inputCost") == obs.cost.input
            assert usage.get("outputCost") == obs.cost.output
    if obs.cost is not None:
        assert body.get("costDetails") == cost_details(obs.cost)
    else:
        assert "costDetails" not in body


def event_time(text: str) -> datetime:
    """Parse a wire time (ISO with Z)."""
    return _time(text)


__all__ = ["attributes", "check_legacy", "check_otlp", "event_time", "iso_z"]

"""The hand-written OTLP bytes equal what the protobuf API serializes for the same request.

``reference_request`` builds the request of contract §3 with opentelemetry-proto's message
classes, independently of the encoder's wire code (it shares only the value conversions of
``opstrail.exporters.fields``). ``SerializeToString`` writes fields in number order and
attributes in list order, so byte equality proves the encoder's tags, lengths, varints and
attribute order, and that its per-request caches never hand one span another span's bytes.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from exporters.strategies import traces as any_trace
from exporters.trees import chat_trace, sample_traces, workflow_trace
from opstrail import __version__
from opstrail.exporters.fields import (
    cost_details,
    iso_z,
    json_text,
    model_parameters,
    observation_text,
    unix_nanos,
    usage_details,
)
from opstrail.exporters.otlp.encode import encode_bytes, encode_spans, frame_spans
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace
from opstrail.tracing.tree import Level, Observation, Trace
from opstrail.tracing.values import JsonValue

_SCALARS = (str, bool, int, float)


def _any(value: Any) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, tuple):
        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    raise AssertionError(f"no attribute for {value!r}")


def _kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def _trace_wide(trace: Trace) -> list[KeyValue]:
    attrs = [_kv("langfuse.trace.name", trace.name)]
    if trace.user_id is not None:
        attrs.append(_kv("user.id", trace.user_id))
    if trace.session_id is not None:
        attrs.append(_kv("session.id", trace.session_id))
    if trace.tags:
        attrs.append(_kv("langfuse.trace.tags", tuple(trace.tags)))
    for key, value in trace.metadata.items():
        if value is None:
            continue
        text_or_scalar = value if isinstance(value, _SCALARS) else json_text(value)
        attrs.append(_kv(f"langfuse.trace.metadata.{key}", text_or_scalar))
    if trace.release is not None:
        attrs.append(_kv("langfuse.release", trace.release))
    attrs.append(_kv("langfuse.environment", trace.environment))
    return attrs


def _observation_attrs(obs: Observation, trace: Trace) -> list[KeyValue]:
    attrs = [
        _kv("langfuse.observation.type", obs.type.value),
        _kv("langfuse.observation.level", obs.level.value),
        *_trace_wide(trace),
    ]
    version = obs.version if obs.version is not None else trace.version
    if version is not None:
        attrs.append(_kv("langfuse.version", version))
    if obs.status_message is not None:
        attrs.append(_kv("langfuse.observation.status_message", obs.status_message))
    observation_input, observation_output = obs.input, obs.output
    if obs.parent_id is None:
        if observation_input is None:
            observation_input = trace.input
        elif trace.input is not None and trace.input != observation_input:
            attrs.append(_kv("langfuse.trace.input", observation_text(trace.input)))
        if observation_output is None:
            observation_output = trace.output
        elif trace.output is not None and trace.output != observation_output:
            attrs.append(_kv("langfuse.trace.output", observation_text(trace.output)))
    if observation_input is not None:
        attrs.append(_kv("langfuse.observation.input", observation_text(observation_input)))
    if observation_output is not None:
        attrs.append(_kv("langfuse.observation.output", observation_text(observation_output)))
    if obs.metadata:
        attrs.append(_kv("langfuse.observation.metadata", json_text(obs.metadata)))
        for key, value in obs.metadata.items():
            if isinstance(value, _SCALARS):
                attrs.append(_kv(f"langfuse.observation.metadata.{key}", value))
    if obs.model is not None:
        attrs.append(_kv("langfuse.observation.model.name", obs.model))
    if obs.model_parameters is not None:
        parameters = json_text(model_parameters(obs.model_parameters))
        attrs.append(_kv("langfuse.observation.model.parameters", parameters))
    if obs.usage is not None:
        attrs.append(_kv("langfuse.observation.usage_details", json_text(usage_details(obs.usage))))
    if obs.cost is not None:
        attrs.append(_kv("langfuse.observation.cost_details", json_text(cost_details(obs.cost))))
    if obs.completion_start_time is not None:
        completion_start = iso_z(obs.completion_start_time)
        attrs.append(_kv("langfuse.observation.completion_start_time", completion_start))
    return attrs


def reference_request(traces: list[Trace]) -> ExportTraceServiceRequest:
    """The request of contract §3 for ``traces``, built with the protobuf message API."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", "opstrail"))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opstrail"
    scope_spans.scope.version = __version__
    for trace in traces:
        for obs in trace.observations:
            span = scope_spans.spans.add()
            span.trace_id = bytes.fromhex(trace.id)
            span.span_id = bytes.fromhex(obs.id)
            if obs.parent_id is not None:
                span.parent_span_id = bytes.fromhex(obs.parent_id)
            span.name = obs.name
            span.kind = Span.SpanKind.SPAN_KIND_INTERNAL
            span.start_time_unix_nano = unix_nanos(obs.start_time)
            span.end_time_unix_nano = unix_nanos(obs.end_time)
            span.attributes.extend(_observation_attrs(obs, trace))
            if obs.level is Level.ERROR:
                span.status.code = Status.StatusCode.STATUS_CODE_ERROR
                span.status.message = obs.status_message or ""
    return request


def _assert_same_bytes(traces: list[Trace]) -> None:
    assert encode_bytes(traces) == reference_request(traces).SerializeToString()


def _renamed(trace: Trace, suffix: str) -> Trace:
    """``trace`` under a new trace id (same observations, same metadata)."""
    trace_id = uuid.uuid5(uuid.NAMESPACE_URL, trace.id + suffix).hex
    observations = tuple(replace(obs, trace_id=trace_id) for obs in trace.observations)
    return replace(trace, id=trace_id, observations=observations)


def test_sample_trees_encode_to_the_protobuf_api_bytes() -> None:
    """Every sample tree, alone and all in one request, gives the protobuf API's bytes."""
    traces = sample_traces()
    _assert_same_bytes(traces)
    for trace in traces:
        _assert_same_bytes([trace])


def test_batches_of_similar_traces_encode_to_the_protobuf_api_bytes() -> None:
    """Traces that repeat metadata, models and trace-wide values (what the request caches
    share) still give every span its own bytes."""
    builds = [
        build_trace(samples.workflow_run(12, workflow_run_id=samples.sample_uuid(f"run-{n}")))
        for n in range(3)
    ]
    chats = [_renamed(chat_trace(), str(n)) for n in range(3)]
    agents = [_renamed(build_trace(samples.agent_message()), str(n)) for n in range(2)]
    _assert_same_bytes([*builds, *chats, *agents, workflow_trace(30)])


def test_values_that_compare_equal_keep_their_own_encoding() -> None:
    """True, 1, 1.0 and -0.0/0.0 under one key, and one key in trace and observation
    metadata, each keep their own attribute across the spans and traces of a request."""
    values: list[JsonValue] = [True, 1, 1.0, 0, False, 0.0, "1", 2**70, math.nan]
    traces = []
    for n, value in enumerate(values):
        trace = _renamed(chat_trace(), f"equal-{n}")
        observations = tuple(
            replace(obs, metadata={"status": value, "shared": values[-1 - n]})
            for obs in trace.observations
        )
        traces.append(replace(trace, metadata={"status": value}, observations=observations))
    # -0.0 after 0.0, in trace and in observation metadata: each keeps its own sign.
    signed = []
    for z in (0.0, -0.0):
        base = _renamed(chat_trace(), f"zero-{z}")
        observations = tuple(replace(obs, metadata={"z": z}) for obs in base.observations)
        signed.append(replace(base, metadata={"z": z}, observations=observations))
    _assert_same_bytes([*traces, *signed])


def test_span_times_far_from_the_trace_timestamp_encode_exactly() -> None:
    """Times before the trace's timestamp and days after it keep their exact nanoseconds."""
    trace = chat_trace()
    shifts = [timedelta(days=-3, microseconds=7), timedelta(days=2, seconds=5), timedelta(0)]
    observations = tuple(
        replace(obs, start_time=obs.start_time + shift, end_time=obs.end_time + 2 * shift)
        for obs, shift in zip(trace.observations, shifts * len(trace.observations), strict=False)
    )
    _assert_same_bytes([replace(trace, observations=observations)])


def _canonical(trace: Trace) -> Trace:
    """``trace`` without the one input whose bytes differ from the protobuf API's by design:
    an empty span name is written explicitly (protobuf leaves an empty string out; both read
    the same)."""
    observations = tuple(
        replace(obs, name=obs.name or "unnamed") for obs in trace.observations
    )
    return replace(trace, observations=observations)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_trace(), min_size=1, max_size=4, unique_by=lambda t: t.id))
def test_any_trees_encode_to_the_protobuf_api_bytes(batch: list[Trace]) -> None:
    """Any trees the model allows, in one request, give the protobuf API's bytes."""
    _assert_same_bytes([_canonical(trace) for trace in batch])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_trace(), min_size=1, max_size=4, unique_by=lambda t: t.id))
def test_stored_spans_framed_together_equal_the_request_encoded_at_once(
    batch: list[Trace],
) -> None:
    """Spans encoded trace by trace (as recorded) and framed into one request give the same
    bytes as encoding the whole batch at send time, caches and all."""
    assert frame_spans([encode_spans(trace) for trace in batch]) == encode_bytes(batch)


def test_stored_spans_of_similar_traces_frame_to_the_protobuf_api_bytes() -> None:
    """Traces sharing metadata, encoded apart and framed, still match the protobuf API."""
    traces = [_renamed(chat_trace(), str(n)) for n in range(3)] + [workflow_trace(12)]
    framed = frame_spans([encode_spans(trace) for trace in traces])
    assert framed == encode_bytes(traces)
    assert ExportTraceServiceRequest.FromString(framed) == ExportTraceServiceRequest.FromString(
        reference_request(traces).SerializeToString()
    )
    assert frame_spans([]) == b""

"""The OTLP serializer: decoded with opentelemetry-proto, every field is where contract §3.5 says."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.trees import chat_trace, sample_traces, title_child_trace, workflow_trace
from exporters.wire import attributes, check_otlp
from opstrail.exporters.otlp.encode import encode_bytes, encode_traces
from opstrail.tracing.tree import Level


def test_encode_traces_carries_every_field_when_decoded() -> None:
    """Every sample tree decodes back to the same fields, with the contract's attribute names."""
    traces = sample_traces()
    request = encode_traces(traces)
    check_otlp(request, traces)


def test_encode_bytes_is_a_valid_protobuf_request() -> None:
    """encode_bytes parses with opentelemetry-proto and equals encode_traces."""
    traces = [chat_trace(), workflow_trace(5)]
    data = encode_bytes(traces)
    parsed = ExportTraceServiceRequest.FromString(data)
    assert parsed == encode_traces(traces)
    assert parsed.SerializeToString() == data  # canonical field order, nothing unknown


def test_encode_puts_trace_wide_attributes_on_every_span() -> None:
    """user, session, name, tags, metadata keys, release, environment, version are on all spans."""
    trace = chat_trace()
    spans = encode_traces([trace]).resource_spans[0].scope_spans[0].spans
    for span in spans:
        attrs = attributes(span)
        assert attrs["user.id"] == "end-user-42"
        assert attrs["session.id"] == "9c0e0d7e-conversation"
        assert attrs["langfuse.trace.tags"] == list(trace.tags)
        assert attrs["langfuse.trace.metadata.app_id"] == "app-1"
        assert attrs["langfuse.trace.metadata.total_tokens"] == 996
        assert attrs["langfuse.trace.metadata.files"] == '["a.txt","b.pdf"]'
        assert "langfuse.trace.metadata.empty" not in attrs
        assert attrs["langfuse.release"] == "2026.08"
        assert attrs["langfuse.environment"] == "production"
        assert attrs["langfuse.version"] in ("v7", "agent-v2")


def test_encode_marks_error_level_as_error_status() -> None:
    """An ERROR observation gets OTel status code 2 with its status message."""
    spans = encode_traces([chat_trace()]).resource_spans[0].scope_spans[0].spans
    errors = [s for s in spans if attributes(s)["langfuse.observation.level"] == Level.ERROR]
    assert [s.name for s in errors] == ["current_time"]
    assert errors[0].status.code == 2
    assert errors[0].status.message == "tool timed out"


def test_encode_keeps_plain_string_input_as_text() -> None:
    """A str input/output is sent as text, not as a JSON string literal."""
    spans = encode_traces([title_child_trace()]).resource_spans[0].scope_spans[0].spans
    attrs = attributes(spans[0])
    assert attrs["langfuse.observation.input"] == "hello there"
    assert attrs["langfuse.observation.output"] == "Greeting"


def test_encode_gives_root_the_trace_input_when_root_has_none() -> None:
    """The root observation carries the overall input/output of the trace."""
    trace = chat_trace()
    root = replace(trace.observations[0], input=None, output=None)
    trace = replace(trace, observations=(root, *trace.observations[1:]))
    spans = encode_traces([trace]).resource_spans[0].scope_spans[0].spans
    attrs = attributes(spans[0])
    assert json.loads(attrs["langfuse.observation.input"]) == {
        "query": "What is the refund policy?"
    }
    assert attrs["langfuse.observation.output"] == "Refunds are accepted within 30 days."
    assert "langfuse.trace.input" not in attrs


def test_encode_sends_trace_input_separately_when_it_differs_from_root() -> None:
    """A trace input unlike the root's own goes to langfuse.trace.input, so nothing is lost."""
    trace = chat_trace()
    spans = encode_traces([trace]).resource_spans[0].scope_spans[0].spans
    attrs = attributes(spans[0])
    assert json.loads(attrs["langfuse.trace.input"]) == {"query": "What is the refund policy?"}
    assert "langfuse.trace.output" not in attrs  # same as the root's output


def test_encode_leaves_out_parent_for_root_only() -> None:
    """The root span has no parent; every other span names an exported or external parent."""
    for trace in sample_traces():
        spans = encode_traces([trace]).resource_spans[0].scope_spans[0].spans
        known = {s.span_id for s in spans} | {bytes.fromhex(i) for i in trace.external_parent_ids}
        roots = [s for s in spans if not s.parent_span_id]
        assert len(roots) == (0 if trace.root is None else 1)
        for span in spans:
            assert not span.parent_span_id or span.parent_span_id in known


def test_encode_writes_nan_as_null_and_huge_int_as_text() -> None:
    """Non-finite floats become JSON null; an int beyond int64 stays exact as text."""
    trace = chat_trace()
    root = replace(trace.observations[0], metadata={"score": math.nan, "big": 2**70})
    trace = replace(trace, observations=(root,), metadata={"big": 2**70})
    attrs = attributes(encode_traces([trace]).resource_spans[0].scope_spans[0].spans[0])
    assert json.loads(attrs["langfuse.observation.metadata"]) == {"score": None, "big": 2**70}
    assert attrs["langfuse.trace.metadata.big"] == str(2**70)


def test_encode_bytes_is_empty_for_no_traces() -> None:
    """No traces, no request body."""
    assert encode_bytes([]) == b""


def test_check_otlp_notices_a_lost_attribute() -> None:
    """The round-trip checker fails when one span loses a trace-wide attribute."""
    import pytest

    trace = chat_trace()
    request = encode_traces([trace])
    span = request.resource_spans[0].scope_spans[0].spans[2]
    kept = [kv for kv in span.attributes if kv.key != "session.id"]
    del span.attributes[:]
    span.attributes.extend(kept)
    with pytest.raises(AssertionError):
        check_otlp(request, [trace])


def test_encode_bytes_is_deterministic_for_retries() -> None:
    """The same traces give the same bytes, so a retry re-sends exactly what failed."""
    assert encode_bytes(sample_traces()) == encode_bytes(sample_traces())

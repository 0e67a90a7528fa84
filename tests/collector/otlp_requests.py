"""Builds OTLP export requests for the collector tests with opentelemetry-proto directly.

Deliberately independent of ``opstrail.exporters``: the collector must catch exporter bugs, so
its tests cannot share the exporter's encoder.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

TRACE_ID = "3f2b1c9e8d7a4e6f9a0b1c2d3e4f5a6b"
ROOT_ID = "a1b2c3d4e5f60718"
LLM_ID = "0718a1b2c3d4e5f6"
START_NS = 1_787_392_800_000_000_000
TRACE_NAME = "message_3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b"


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTel AnyValue."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


@dataclass
class SpanSpec:
    """One span to encode; ids are hex strings (may be deliberately wrong)."""

    span_id: str
    name: str
    parent_id: str | None = None
    trace_id: str = TRACE_ID
    start_ns: int = START_NS
    end_ns: int = START_NS + 1_500_000_000
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0
    status_message: str = ""


def export_request(
    spans: list[SpanSpec],
    *,
    resource: dict[str, Any] | None = None,
    scope_name: str = "opstrail-tests",
) -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest holding ``spans`` in one resource and scope."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (resource or {"service.name": "opstrail-tests"}).items():
        resource_spans.resource.attributes.append(KeyValue(key=key, value=any_value(value)))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope_name
    scope_spans.scope.version = "1.0.0"
    for spec in spans:
        span = scope_spans.spans.add()
        span.trace_id = bytes.fromhex(spec.trace_id)
        span.span_id = bytes.fromhex(spec.span_id)
        if spec.parent_id is not None:
            span.parent_span_id = bytes.fromhex(spec.parent_id)
        span.name = spec.name
        span.kind = 1
        span.start_time_unix_nano = spec.start_ns
        span.end_time_unix_nano = spec.end_ns
        span.status.code = spec.status_code  # type: ignore[assignment]
        span.status.message = spec.status_message
        for key, value in spec.attributes.items():
            span.attributes.append(KeyValue(key=key, value=any_value(value)))
    return request


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: protobuf JSON mapping with ids rewritten as lowercase hex (the OTLP rule)."""
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def chat_spans() -> list[SpanSpec]:
    """The contract's example: a chat message root span and its LLM generation."""
    trace_wide = {
        "langfuse.trace.name": TRACE_NAME,
        "user.id": "end-user-42",
        "session.id": "conv-1",
        "langfuse.trace.tags": ["message", "chat"],
        "langfuse.trace.metadata.app_id": "app-1",
        "langfuse.environment": "production",
    }
    root = SpanSpec(
        ROOT_ID,
        "message",
        attributes={
            **trace_wide,
            "langfuse.observation.type": "chain",
            "langfuse.observation.input": json.dumps({"query": "hi"}),
            "langfuse.observation.output": json.dumps("Hello!"),
        },
    )
    llm = SpanSpec(
        LLM_ID,
        "llm",
        parent_id=ROOT_ID,
        start_ns=START_NS + 100_000_000,
        end_ns=START_NS + 1_400_000_000,
        attributes={
            **trace_wide,
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "gpt-4o-mini",
            "langfuse.observation.model.parameters": json.dumps({"temperature": 0.2}),
            "langfuse.observation.usage_details": json.dumps(
                {"input": 812, "output": 64, "total": 876}
            ),
            "langfuse.observation.cost_details": json.dumps({"total": 0.00054}),
            "langfuse.observation.completion_start_time": "2026-08-22T10:00:00.420Z",
            "custom.flag": True,
        },
    )
    return [root, llm]

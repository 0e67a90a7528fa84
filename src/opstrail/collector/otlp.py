"""Decode OTLP/HTTP trace exports (protobuf or JSON) and map spans the way Langfuse does.

Validation follows Langfuse's route: the whole request is refused (400 with an ``error`` text)
when the body cannot be decoded or when any span has a missing or invalid trace, span or parent
id. Mapping follows ``OtelIngestionProcessor.ts`` for the ``langfuse.*`` attributes.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from opstrail.collector.values import (
    OBSERVATION_TYPES,
    cost_details,
    format_time,
    normalise_environment,
    parse_json_text,
    parse_tags,
    usage_details,
)

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
STATUS_ERROR: Final = 2
_LEVELS: Final = frozenset({"DEBUG", "DEFAULT", "WARNING", "ERROR"})
_UNSAFE_SEGMENTS: Final = frozenset({"__proto__", "constructor", "prototype"})
_ID_FIELDS: Final = ("traceId", "spanId", "parentSpanId")
# Attributes that land in named Langfuse fields; every other one goes to metadata.attributes.
_MAPPED_PREFIXES: Final = ("langfuse.",)
_MAPPED_KEYS: Final = frozenset(
    {
        "user.id",
        "session.id",
        "gen_ai.conversation.id",
        "deployment.environment",
        "deployment.environment.name",
    }
)


class OtlpRequestError(Exception):
    """The whole export is refused with 400; ``str()`` is the ``error`` text."""


@dataclass(frozen=True, slots=True)
class DecodedSpan:
    """One span with its resource and scope, ids as lowercase hex."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    span: Span
    resource_attributes: dict[str, Any]
    scope: dict[str, Any]


def decompress(body: bytes, content_encoding: str | None, *, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity).

    Raises:
        OtlpRequestError: an unknown encoding, a corrupt stream, or a stream inflating beyond
            ten times ``max_bytes`` (a compression bomb).
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise OtlpRequestError(f"Unsupported content encoding: {encoding}")
    limit = max_bytes * 10
    try:
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        data = inflater.decompress(body, limit + 1)
        if len(data) > limit:
            raise OtlpRequestError("Decompressed body is too large")
        if not inflater.eof:
            raise OtlpRequestError("Failed to decompress body: truncated stream")
        return data
    except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise OtlpRequestError(f"Failed to decompress body: {exc}") from exc


def media_type(content_type: str | None) -> str:
    """The lowercased media type without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_request(
    body: bytes, content_type: str | None, id_text: dict[bytes, str] | None = None
) -> ExportTraceServiceRequest:
    """Parse an OTLP export body of the given content type.

    Langfuse uses a JSON id string as it is (``parseId``) but lowercases protobuf bytes; so
    for JSON, ids not already in lowercase hex are written into ``id_text`` (raw bytes ->
    the sent text) for :func:`iter_spans` to keep, and an uppercase-id bug stays visible.

    Raises:
        OtlpRequestError: the content type is neither protobuf nor JSON, or the body is
            undecodable.
    """
    kind = media_type(content_type)
    if kind == PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
            return request
        except DecodeError as exc:
            raise OtlpRequestError(f"Failed to parse OTLP protobuf: {exc}") from exc
    if kind == JSON:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OtlpRequestError(f"Failed to parse OTLP JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise OtlpRequestError("OTLP JSON body must be an object")
        _hex_ids_to_base64(document, {} if id_text is None else id_text)
        request = ExportTraceServiceRequest()
        try:
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
            return request
        except json_format.ParseError as exc:
            raise OtlpRequestError(f"Failed to parse OTLP JSON: {exc}") from exc
    raise OtlpRequestError(f"Invalid content type: {kind or 'none'}")


def _hex_ids_to_base64(document: dict[str, Any], id_text: dict[bytes, str]) -> None:
    """OTLP/JSON carries ids as hex strings; protobuf's JSON mapping wants base64 bytes."""
    for resource_spans in _as_list(document.get("resourceSpans"), "resourceSpans"):
        if not isinstance(resource_spans, dict):
            raise OtlpRequestError("resourceSpans entries must be objects")
        for scope_spans in _as_list(resource_spans.get("scopeSpans"), "scopeSpans"):
            if not isinstance(scope_spans, dict):
                raise OtlpRequestError("scopeSpans entries must be objects")
            for span in _as_list(scope_spans.get("spans"), "spans"):
                if not isinstance(span, dict):
                    raise OtlpRequestError("spans entries must be objects")
                for key in _ID_FIELDS:
                    if key in span:
                        span[key] = _hex_to_base64(span[key], key, span.get("name"), id_text)
                for link in span.get("links") or []:
                    if isinstance(link, dict):
                        for key in ("traceId", "spanId"):
                            if key in link:
                                link[key] = _hex_to_base64(link[key], key, span.get("name"), {})


def _as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpRequestError(f"{name} must be an array")
    return value


def _hex_to_base64(value: Any, key: str, span_name: Any, id_text: dict[bytes, str]) -> str:
    if not isinstance(value, str):
        raise OtlpRequestError(f"Invalid {key} in span {span_name!r}: not a string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise OtlpRequestError(f"Invalid {key} in span {span_name!r}: not hex") from exc
    if value != raw.hex():
        id_text[raw] = value
    return base64.b64encode(raw).decode("ascii")


def iter_spans(
    request: ExportTraceServiceRequest, id_text: dict[bytes, str] | None = None
) -> Iterator[DecodedSpan]:
    """Every span of the request, validated; ids as lowercase hex unless ``id_text`` keeps
    the JSON text that was sent.

    Raises:
        OtlpRequestError: a span has a missing, all-zero or wrongly sized id.
    """
    for resource_spans in request.resource_spans:
        resource = decode_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope_pb = scope_spans.scope
            scope = {
                "name": scope_pb.name,
                "version": scope_pb.version,
                "attributes": decode_attributes(scope_pb.attributes),
            }
            for span in scope_spans.spans:
                texts = id_text or {}
                trace_id = _check_id(span.trace_id, 16, "traceId", span.name, texts)
                span_id = _check_id(span.span_id, 8, "spanId", span.name, texts)
                parent = None
                if span.parent_span_id:
                    parent = _check_id(span.parent_span_id, 8, "parentSpanId", span.name, texts)
                yield DecodedSpan(trace_id, span_id, parent, span, resource, scope)


def _check_id(raw: bytes, size: int, name: str, span_name: str, id_text: dict[bytes, str]) -> str:
    if not raw:
        raise OtlpRequestError(f"Span {span_name!r} has no {name}")
    if len(raw) != size:
        raise OtlpRequestError(
            f"Span {span_name!r} has an invalid {name}: {len(raw)} bytes, expected {size}"
        )
    if not any(raw):
        raise OtlpRequestError(f"Span {span_name!r} has an all-zero {name}")
    return id_text.get(raw, raw.hex())


def decode_value(value: AnyValue) -> Any:
    """An OTel AnyValue as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [decode_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def decode_attributes(attributes: Any) -> dict[str, Any]:
    """A repeated KeyValue as a dict (later keys win, as in OTel).

    Keys with a path segment ``__proto__``, ``constructor`` or ``prototype`` are dropped, as
    Langfuse drops them.
    """
    result: dict[str, Any] = {}
    kv: KeyValue
    for kv in attributes:
        if _UNSAFE_SEGMENTS.isdisjoint(kv.key.split(".")):
            result[kv.key] = decode_value(kv.value)
    return result


def _nanos_to_time(nanos: int) -> str | None:
    if nanos <= 0:
        return None
    seconds, rest = divmod(nanos, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return format_time(moment)


def span_observation(decoded: DecodedSpan, received_at: str) -> dict[str, Any]:
    """The Langfuse observation a span becomes (Langfuse public API field names).

    Besides Langfuse's fields it keeps ``attributes`` (every span attribute, decoded),
    ``resourceAttributes`` and ``scope``, so tests can see exactly what was sent.
    """
    span = decoded.span
    attrs = decode_attributes(span.attributes)
    resource = decoded.resource_attributes
    start = _nanos_to_time(span.start_time_unix_nano)
    end = _nanos_to_time(span.end_time_unix_nano)
    start, end = start or end or received_at, end or start or received_at
    model = attrs.get("langfuse.observation.model.name")
    raw_type = attrs.get("langfuse.observation.type")
    if isinstance(raw_type, str) and raw_type.lower() in OBSERVATION_TYPES:
        obs_type = raw_type.upper()
    else:
        obs_type = "GENERATION" if model else "SPAN"
    raw_level = attrs.get("langfuse.observation.level")
    if isinstance(raw_level, str) and raw_level.upper() in _LEVELS:
        level = raw_level.upper()
    else:
        level = "ERROR" if span.status.code == STATUS_ERROR else "DEFAULT"
    status_message = attrs.get("langfuse.observation.status_message") or (
        span.status.message or None
    )
    metadata = _metadata(attrs, "langfuse.observation.metadata")
    unmapped = {
        k: v
        for k, v in attrs.items()
        if not k.startswith(_MAPPED_PREFIXES) and k not in _MAPPED_KEYS
    }
    if unmapped and not str(decoded.scope.get("name", "")).startswith("langfuse-sdk"):
        metadata["attributes"] = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in unmapped.items()
        }
    if resource:
        metadata["resourceAttributes"] = resource
    metadata["scope"] = decoded.scope
    version = attrs.get("langfuse.version") or resource.get("service.version")
    prompt_version = attrs.get("langfuse.observation.prompt.version")
    return {
        "id": decoded.span_id,
        "traceId": decoded.trace_id,
        "parentObservationId": decoded.parent_span_id,
        "type": obs_type,
        "name": span.name,
        "startTime": start,
        "endTime": end,
        "completionStartTime": attrs.get("langfuse.observation.completion_start_time"),
        "level": level,
        "statusMessage": status_message,
        "input": parse_json_text(attrs.get("langfuse.observation.input")),
        "output": parse_json_text(attrs.get("langfuse.observation.output")),
        "metadata": metadata,
        "model": model,
        "modelParameters": _json_object(attrs.get("langfuse.observation.model.parameters")),
        "usageDetails": usage_details(
            _json_object(attrs.get("langfuse.observation.usage_details"))
        ),
        "costDetails": cost_details(_json_object(attrs.get("langfuse.observation.cost_details"))),
        "promptName": attrs.get("langfuse.observation.prompt.name"),
        "promptVersion": prompt_version,
        "environment": _environment(attrs, resource),
        "version": version,
        "release": attrs.get("langfuse.release") or resource.get("langfuse.release"),
        "attributes": attrs,
        "resourceAttributes": resource,
        "scope": decoded.scope,
    }


def span_trace(decoded: DecodedSpan, observation: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trace record (or trace-wide fields) a span carries; None when it carries none.

    A root span (no parent, or ``langfuse.internal.as_root``) yields a full trace record; other
    spans contribute only the trace-wide attributes they repeat.
    """
    attrs: Mapping[str, Any] = observation["attributes"]
    is_root = decoded.parent_span_id is None or attrs.get("langfuse.internal.as_root") is True
    record: dict[str, Any] = {}
    name = attrs.get("langfuse.trace.name")
    user_id = attrs.get("user.id") or attrs.get("langfuse.user.id")
    session_id = (
        attrs.get("session.id")
        or attrs.get("langfuse.session.id")
        or attrs.get("gen_ai.conversation.id")
    )
    tags = parse_tags(attrs.get("langfuse.trace.tags"))
    metadata = _metadata(attrs, "langfuse.trace.metadata")
    for key, value in (
        ("name", name),
        ("userId", user_id),
        ("sessionId", session_id),
        ("tags", tags or None),
        ("public", attrs.get("langfuse.trace.public")),
        ("metadata", metadata or None),
        ("input", parse_json_text(attrs.get("langfuse.trace.input"))),
        ("output", parse_json_text(attrs.get("langfuse.trace.output"))),
        ("release", observation["release"]),
        ("version", observation["version"]),
    ):
        if value is not None:
            record[key] = value
    if not is_root and not record:
        return None
    record["environment"] = observation["environment"]
    if is_root:
        record.setdefault("name", observation["name"])
        record["timestamp"] = observation["startTime"]
        record["rootObservationId"] = observation["id"]
        record.setdefault("input", observation["input"])
        record.setdefault("output", observation["output"])
    record["isRoot"] = is_root
    return record


def _metadata(attrs: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    whole = _json_object(attrs.get(prefix))
    if whole:
        metadata.update(whole)
    dotted = prefix + "."
    for key, value in attrs.items():
        if key.startswith(dotted):
            metadata[key[len(dotted) :]] = value
    return metadata


def _json_object(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, str):
        return None
    parsed = parse_json_text(value)
    return parsed if isinstance(parsed, dict) else None


def _environment(attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    for source in (attrs, resource):
        for key in (
            "langfuse.environment",
            "deployment.environment.name",
            "deployment.environment",
        ):
            value = source.get(key)
            if isinstance(value, str):
                return normalise_environment(value)
    return "default"

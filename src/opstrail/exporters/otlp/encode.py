"""Trace trees -> OTLP ``ExportTraceServiceRequest`` (pure; contract §3).

The request is written straight in protobuf wire format: one ``ResourceSpans`` (resource
attribute ``service.name`` only, so nothing extra lands in every observation's metadata), one
``ScopeSpans`` named ``opstrail`` (never ``langfuse-sdk*``, which would make Langfuse hide unmapped
attributes), one span per observation.

Why hand-written wire bytes: building ``KeyValue`` messages through the protobuf API costs about
a microsecond per attribute, and a span carries 15-30 attributes. The delivery worker encodes
every trace at send time, so the bytes are kept cheap:

* each span is a flat list of byte strings joined once, and the request one more join over the
  spans: every byte is copied twice in all;
* a string attribute is its memoised head (``_str_head``: tags and lengths, which depend only on
  the key and the value's size) followed by the value's UTF-8 bytes;
* the trace-wide attributes (name, user, session, tags, metadata keys, release, environment,
  version) are encoded once per trace and copied into every span; attributes that repeat
  (metadata pairs, model names, trace metadata shared by the traces of a batch) are encoded
  once per request (``_Request``).

``encode_traces`` parses the bytes back into the message with protobuf's C decoder. The tests
decode every request with ``opentelemetry-proto`` and compare the bytes with what the protobuf
API serializes for the same request, so the bytes are proven to be what the schema says.

Field numbers are from ``opentelemetry/proto/{collector/trace,trace,common,resource}/v1``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Final

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from opstrail import __version__
from opstrail.exporters.fields import (
    cost_details,
    is_scalar,
    iso_z,
    json_bytes,
    json_default,
    model_parameters,
    observation_bytes,
    unix_nanos,
    usage_details,
)
from opstrail.tracing.tree import Level, Observation, ObservationType, Trace
from opstrail.tracing.values import JsonValue

__all__ = ["SCOPE_NAME", "encode_bytes", "encode_spans", "encode_traces", "frame_spans"]

SCOPE_NAME: Final = "opstrail"

_Scalar = str | bool | int | float
# Cached scalar attributes by (key, type, value): the type tells True, 1 and 1.0 apart (0.0
# and -0.0 still share an entry, as they always have for observation metadata).
_ScalarCache = dict[tuple[str, type, _Scalar], bytes]
# Cached string attributes by key, then value: a look-up needs no tuple.
_StringCache = dict[str, dict[str, bytes]]

_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))
_PACK_F64: Final = struct.Struct("<d").pack
_dumps: Final = orjson.dumps
# Span fields 6-8 in one call: kind (INTERNAL), start and end time (fixed64 nanoseconds).
_PACK_KIND_AND_TIMES: Final = struct.Struct("<BBBQBQ").pack

# Scalar types an attribute holds natively; subclasses (a StrEnum value) go through is_scalar.
_SCALAR_TYPES: Final = frozenset({str, bool, int, float})
_NON_SCALAR_TYPES: Final = frozenset({type(None), dict, list, tuple})
_INT64_MIN: Final = -(2**63)
_INT64_END: Final = 2**63


class _Request:
    """Attributes already encoded during one ``encode_bytes`` call, so that a value repeated
    across spans and traces is encoded once.

    Trace and observation metadata need caches of their own: the same key has a different
    prefix in each.
    """

    __slots__ = (
        "fixed",
        "models",
        "span_scalars",
        "span_strings",
        "tags",
        "trace_scalars",
        "trace_strings",
    )

    def __init__(self) -> None:
        self.trace_strings: _StringCache = {}
        self.trace_scalars: _ScalarCache = {}
        self.span_strings: _StringCache = {}
        self.span_scalars: _ScalarCache = {}
        # Attributes of a fixed key (user, session, release, environment) by key and value.
        self.fixed: dict[tuple[bytes, str], bytes] = {}
        self.tags: dict[tuple[str, ...], bytes] = {}
        self.models: dict[str, bytes] = {}

    def fixed_attr(self, key: bytes, value: str) -> bytes:
        """The string attribute ``key`` (pre-encoded) = ``value``, encoded once."""
        attr = self.fixed.get((key, value))
        if attr is None:
            attr = self.fixed[(key, value)] = _str_attr(key, value.encode("utf-8"))
        return attr


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL_VARINTS[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return b"".join((tag, _varint(len(payload)), payload))


def _key(name: str) -> bytes:
    """KeyValue.key (field 1) of an attribute, pre-encoded."""
    return _field(b"\x0a", name.encode("utf-8"))


@lru_cache(maxsize=4096)
def _prefixed_key(prefix: str, name: str) -> bytes:
    """``_key(prefix + name)``, memoised: metadata keys are a small set in practice."""
    return _key(prefix + name)


@lru_cache(maxsize=16384)
def _str_head(key: bytes, size: int) -> bytes:
    """Everything of a string attribute before its ``size`` value bytes.

    A Span.attributes (field 9) entry is KeyValue{1 key, 2 AnyValue{1 string}}: its tags and
    lengths depend only on the key and the size, so they are memoised (a few thousand keys and
    sizes cover almost every attribute a process sends).
    """
    size_prefix = _varint(size)
    any_size = 1 + len(size_prefix) + size
    any_prefix = _varint(any_size)
    entry_size = len(key) + 1 + len(any_prefix) + any_size
    return b"".join((b"\x4a", _varint(entry_size), key, b"\x12", any_prefix, b"\x0a", size_prefix))


def _str_attr(key: bytes, data: bytes) -> bytes:
    """A string attribute from its UTF-8 bytes."""
    return _str_head(key, len(data)) + data


def _any_attr(key: bytes, any_value: bytes) -> bytes:
    """A Span.attributes entry whose AnyValue is already encoded."""
    return _field(b"\x4a", key + _field(b"\x12", any_value))


# AnyValue (common.proto): 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue{1 values}.
def _scalar_attr(key: bytes, value: _Scalar) -> bytes:
    """An attribute holding a scalar natively."""
    if isinstance(value, str):
        return _str_attr(key, value.encode("utf-8"))
    if isinstance(value, bool):
        return _any_attr(key, b"\x10\x01" if value else b"\x10\x00")
    if isinstance(value, int):
        if _INT64_MIN <= value < _INT64_END:
            return _any_attr(key, b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF))
        return _str_attr(key, str(value).encode("utf-8"))  # beyond int64: keep the digits
    return _any_attr(key, b"\x21" + _PACK_F64(value))


def _string_array_attr(key: bytes, values: Sequence[str]) -> bytes:
    inner = b"".join(_field(b"\x0a", _field(b"\x0a", v.encode("utf-8"))) for v in values)
    return _any_attr(key, _field(b"\x2a", inner))


def _new_string_attr(cache: _StringCache, prefix: str, key: str, value: str) -> bytes:
    """Encode the string attribute ``prefix + key`` = ``value`` and cache it."""
    by_value = cache.get(key)
    if by_value is None:
        by_value = cache[key] = {}
    data = value.encode("utf-8")
    attr = by_value[value] = _str_head(_prefixed_key(prefix, key), len(data)) + data
    return attr


def _new_scalar_attr(cache: _ScalarCache, prefix: str, key: str, value: _Scalar) -> bytes:
    """Encode the attribute ``prefix + key`` = ``value`` and cache it."""
    attr = cache[(key, value.__class__, value)] = _scalar_attr(_prefixed_key(prefix, key), value)
    return attr


_K_TYPE: Final = _key("langfuse.observation.type")
_K_LEVEL: Final = _key("langfuse.observation.level")
_K_STATUS_MESSAGE: Final = _key("langfuse.observation.status_message")
_K_INPUT: Final = _key("langfuse.observation.input")
_K_OUTPUT: Final = _key("langfuse.observation.output")
_K_METADATA: Final = _key("langfuse.observation.metadata")
_K_MODEL: Final = _key("langfuse.observation.model.name")
_K_MODEL_PARAMS: Final = _key("langfuse.observation.model.parameters")
_K_USAGE: Final = _key("langfuse.observation.usage_details")
_K_COST: Final = _key("langfuse.observation.cost_details")
_K_COMPLETION_START: Final = _key("langfuse.observation.completion_start_time")
_K_TRACE_NAME: Final = _key("langfuse.trace.name")
_K_TRACE_INPUT: Final = _key("langfuse.trace.input")
_K_TRACE_OUTPUT: Final = _key("langfuse.trace.output")
_K_USER: Final = _key("user.id")
_K_SESSION: Final = _key("session.id")
_K_TAGS: Final = _key("langfuse.trace.tags")
_K_VERSION: Final = _key("langfuse.version")
_K_RELEASE: Final = _key("langfuse.release")
_K_ENVIRONMENT: Final = _key("langfuse.environment")
_K_SERVICE_NAME: Final = _key("service.name")

_OBSERVATION_METADATA_PREFIX: Final = "langfuse.observation.metadata."
_TRACE_METADATA_PREFIX: Final = "langfuse.trace.metadata."

# The type and level attributes of a span, together: every combination is known up front.
_TYPE_LEVEL_ATTRS: Final = {
    kind: {
        level: _str_attr(_K_TYPE, kind.value.encode()) + _str_attr(_K_LEVEL, level.value.encode())
        for level in Level
    }
    for kind in ObservationType
}
# Tag and length of a short Span.name (field 5).
_NAME_HEADS: Final = tuple(b"\x2a" + size for size in _SMALL_VARINTS)
_ERROR: Final = Level.ERROR
_STATUS_ERROR_CODE: Final = b"\x18\x02"  # Status.code (field 3) = STATUS_CODE_ERROR


def _trace_wide(trace: Trace, request: _Request) -> bytes:
    """The attributes every span of ``trace`` repeats (contract §3.6), encoded once.

    Apart from the name, these values mostly repeat across the traces of a batch (one app, one
    environment), so they go through the request's caches.
    """
    parts = [_str_attr(_K_TRACE_NAME, trace.name.encode("utf-8"))]
    if trace.user_id is not None:
        parts.append(request.fixed_attr(_K_USER, trace.user_id))
    if trace.session_id is not None:
        parts.append(request.fixed_attr(_K_SESSION, trace.session_id))
    if trace.tags:
        parts.append(_tags_attr(trace.tags, request))
    _trace_metadata_attrs(parts, trace.metadata, request)
    if trace.release is not None:
        parts.append(request.fixed_attr(_K_RELEASE, trace.release))
    parts.append(request.fixed_attr(_K_ENVIRONMENT, trace.environment))
    return b"".join(parts)


def _tags_attr(tags: Sequence[str], request: _Request) -> bytes:
    if tags.__class__ is not tuple:  # a list cannot key the cache
        return _string_array_attr(_K_TAGS, tags)
    attr = request.tags.get(tags)
    if attr is None:
        attr = request.tags[tags] = _string_array_attr(_K_TAGS, tags)
    return attr


def _trace_metadata_attrs(
    parts: list[bytes], metadata: Mapping[str, JsonValue], request: _Request
) -> None:
    """One attribute per trace metadata key: scalars natively, other values as JSON text."""
    strings = request.trace_strings
    for key, value in metadata.items():
        if value.__class__ is str:
            try:
                attr = strings[key].get(value)
            except KeyError:  # the key's first value in this request
                attr = None
            if attr is None:
                attr = _new_string_attr(strings, _TRACE_METADATA_PREFIX, key, value)
        elif value is None:
            continue  # an attribute cannot be null; an absent key reads the same in Langfuse
        elif isinstance(value, float):
            # Not cached: 0.0 == -0.0 would share one encoding across the traces of a batch.
            attr = _scalar_attr(_prefixed_key(_TRACE_METADATA_PREFIX, key), value)
        elif is_scalar(value):
            attr = request.trace_scalars.get((key, value.__class__, value))
            if attr is None:
                attr = _new_scalar_attr(request.trace_scalars, _TRACE_METADATA_PREFIX, key, value)
        else:
            attr = _str_attr(_prefixed_key(_TRACE_METADATA_PREFIX, key), json_bytes(value))
        parts.append(attr)


def _metadata_attrs(
    parts: list[bytes], metadata: Mapping[str, JsonValue], request: _Request
) -> None:
    """Append the metadata JSON object attribute and one attribute per scalar key.

    Keys and many values repeat across spans (node_type, status), so each scalar pair is encoded
    once per request. This loop is the encoder's hottest, hence the inlined look-ups: string
    values, most of them, by key and then value; other scalars by (key, type, value).
    """
    try:  # json_bytes, inlined
        data = _dumps(metadata, default=json_default)
    except TypeError:
        data = json_bytes(metadata)
    parts += (_str_head(_K_METADATA, len(data)), data)
    strings = request.span_strings
    for key, value in metadata.items():
        if value.__class__ is str:
            try:
                attr = strings[key].get(value)
            except KeyError:  # the key's first value in this request
                attr = None
            if attr is None:
                attr = _new_string_attr(strings, _OBSERVATION_METADATA_PREFIX, key, value)
            parts.append(attr)
            continue
        kind = value.__class__
        if kind is float:
            # Not cached: 0.0 == -0.0 would share one encoding across the spans of a batch.
            parts.append(_scalar_attr(_prefixed_key(_OBSERVATION_METADATA_PREFIX, key), value))  # type: ignore[arg-type]
            continue
        if kind in _SCALAR_TYPES or (kind not in _NON_SCALAR_TYPES and is_scalar(value)):
            scalars = request.span_scalars
            attr = scalars.get((key, kind, value))  # type: ignore[arg-type]
            if attr is None:
                attr = _new_scalar_attr(scalars, _OBSERVATION_METADATA_PREFIX, key, value)  # type: ignore[arg-type]
            parts.append(attr)


def _io_bytes(value: JsonValue) -> bytes:
    """``observation_bytes``, with plain strings and JSON objects and arrays first."""
    kind = value.__class__
    if kind is str:
        return value.encode("utf-8")  # type: ignore[union-attr]
    if kind is dict or kind is list:
        try:
            return _dumps(value, default=json_default)
        except TypeError:
            return json_bytes(value)
    return observation_bytes(value)


def _root_io(parts: list[bytes], obs: Observation, trace: Trace) -> tuple[JsonValue, JsonValue]:
    """The root observation holds the overall request and response (contract §3.6); a
    trace-level value that differs from the root's own goes to the trace attributes."""
    observation_input, observation_output = obs.input, obs.output
    if observation_input is None:
        observation_input = trace.input
    elif trace.input is not None and trace.input != observation_input:
        parts.append(_str_attr(_K_TRACE_INPUT, observation_bytes(trace.input)))
    if observation_output is None:
        observation_output = trace.output
    elif trace.output is not None and trace.output != observation_output:
        parts.append(_str_attr(_K_TRACE_OUTPUT, observation_bytes(trace.output)))
    return observation_input, observation_output


def _generation_attrs(parts: list[bytes], obs: Observation, request: _Request) -> None:
    """Append model, parameters, usage, cost and completion start (those present)."""
    if obs.model is not None:
        model = request.models.get(obs.model)
        if model is None:
            model = request.models[obs.model] = _str_attr(_K_MODEL, obs.model.encode("utf-8"))
        parts.append(model)
    if obs.model_parameters is not None:
        data = json_bytes(model_parameters(obs.model_parameters))
        parts += (_str_head(_K_MODEL_PARAMS, len(data)), data)
    if obs.usage is not None:
        data = json_bytes(usage_details(obs.usage))
        parts += (_str_head(_K_USAGE, len(data)), data)
    if obs.cost is not None:
        data = json_bytes(cost_details(obs.cost))
        parts += (_str_head(_K_COST, len(data)), data)
    if obs.completion_start_time is not None:
        data = iso_z(obs.completion_start_time).encode("utf-8")
        parts += (_str_head(_K_COMPLETION_START, len(data)), data)


def _error_status(status_message: str | None) -> bytes:
    """Span.status (field 15): code ERROR, with the message when there is one."""
    status = _STATUS_ERROR_CODE
    if status_message:
        status = _field(b"\x12", status_message.encode("utf-8")) + status
    return _field(b"\x7a", status)


class _TraceContext:
    """What every span of one trace shares, computed once per trace."""

    __slots__ = ("base", "base_nanos", "ids_prefix", "trace", "wide", "wide_and_version")

    def __init__(self, trace: Trace, request: _Request) -> None:
        self.trace = trace
        # Hex of Span.trace_id (field 1) and of the tag of Span.span_id (field 2).
        self.ids_prefix = "0a10" + trace.id + "1208"
        self.wide = _trace_wide(trace, request)
        if trace.version is None:
            self.wide_and_version = self.wide
        else:  # for spans without a version of their own
            self.wide_and_version = self.wide + _str_attr(_K_VERSION, trace.version.encode("utf-8"))
        # Span times as nanoseconds after the trace's timestamp: small integers, cheaper
        # arithmetic than nanoseconds since the epoch for every time.
        self.base = trace.timestamp
        self.base_nanos = unix_nanos(trace.timestamp)


def _nanos(value: timedelta, base_nanos: int) -> int:
    return (
        base_nanos + ((value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds) * 1000
    )


def _encode_span(
    out: list[bytes], obs: Observation, context: _TraceContext, request: _Request
) -> None:
    """Append the ScopeSpans.spans (field 2) entry of ``obs``: its tag and length, then its body."""
    parent_id = obs.parent_id
    # Span fields 1, 2 and 4 (trace, span and parent id) in one conversion.
    if parent_id is None:
        ids = bytes.fromhex(context.ids_prefix + obs.id)
    else:
        ids = bytes.fromhex(f"{context.ids_prefix}{obs.id}2208{parent_id}")
    name = obs.name.encode("utf-8")
    size = len(name)
    start = obs.start_time - context.base
    end = obs.end_time - context.base
    base_nanos = context.base_nanos
    parts = [
        ids,
        _NAME_HEADS[size] if size < 0x80 else b"\x2a" + _varint(size),
        name,
        _PACK_KIND_AND_TIMES(
            0x30,
            0x01,
            0x39,
            # fields.unix_nanos, inlined for times within a day of the trace's timestamp.
            base_nanos + (start.seconds * 1_000_000 + start.microseconds) * 1000
            if start.days == 0
            else _nanos(start, base_nanos),
            0x41,
            base_nanos + (end.seconds * 1_000_000 + end.microseconds) * 1000
            if end.days == 0
            else _nanos(end, base_nanos),
        ),
        _TYPE_LEVEL_ATTRS[obs.type][obs.level],
    ]
    if obs.version is None:
        parts.append(context.wide_and_version)
    else:
        parts += (context.wide, _str_attr(_K_VERSION, obs.version.encode("utf-8")))
    if obs.status_message is not None:
        parts.append(_str_attr(_K_STATUS_MESSAGE, obs.status_message.encode("utf-8")))

    if parent_id is None:
        observation_input, observation_output = _root_io(parts, obs, context.trace)
    else:
        observation_input, observation_output = obs.input, obs.output
    if observation_input is not None:
        data = _io_bytes(observation_input)
        parts += (_str_head(_K_INPUT, len(data)), data)
    if observation_output is not None:
        data = _io_bytes(observation_output)
        parts += (_str_head(_K_OUTPUT, len(data)), data)
    if obs.metadata:
        _metadata_attrs(parts, obs.metadata, request)
    if (
        obs.model is not None
        or obs.model_parameters is not None
        or obs.usage is not None
        or obs.cost is not None
        or obs.completion_start_time is not None
    ):
        _generation_attrs(parts, obs, request)
    if obs.level is _ERROR:
        parts.append(_error_status(obs.status_message))
    body = b"".join(parts)
    size = len(body)
    if size < 0x80:
        out += (b"\x12" + _SMALL_VARINTS[size], body)
    elif size < 0x4000:  # most spans
        out += (bytes((0x12, (size & 0x7F) | 0x80, size >> 7)), body)
    else:
        out += (b"\x12" + _varint(size), body)


def _request_head(spans_size: int, service_name: str, version: str) -> bytes:
    """Everything of the request before its spans (which take ``spans_size`` bytes)."""
    # Resource{1 attributes: KeyValue{service.name}}, InstrumentationScope{1 name, 2 version}.
    service = _field(b"\x0a", service_name.encode("utf-8"))
    resource = _field(b"\x0a", _field(b"\x0a", _K_SERVICE_NAME + _field(b"\x12", service)))
    scope = _field(
        b"\x0a",
        _field(b"\x0a", SCOPE_NAME.encode("utf-8")) + _field(b"\x12", version.encode("utf-8")),
    )
    scope_spans_size = len(scope) + spans_size
    scope_spans_head = b"\x12" + _varint(scope_spans_size)  # ResourceSpans.scope_spans (2)
    resource_spans_size = len(resource) + len(scope_spans_head) + scope_spans_size
    # ExportTraceServiceRequest.resource_spans (field 1).
    return b"".join((b"\x0a", _varint(resource_spans_size), resource, scope_spans_head, scope))


def encode_bytes(
    traces: Sequence[Trace],
    *,
    service_name: str = SCOPE_NAME,
    version: str = __version__,
) -> bytes:
    """Encode ``traces`` as the protobuf bytes of one ``ExportTraceServiceRequest``.

    Args:
        traces: finished traces; each observation becomes one span.
        service_name: resource attribute ``service.name``.
        version: instrumentation scope version (opstrail's version).

    Returns:
        The uncompressed request body for ``POST /api/public/otel/v1/traces``.
    """
    if not traces:
        return b""
    spans: list[bytes] = [b""]  # the request head goes first, once the spans' size is known
    _append_spans(spans, traces)
    spans[0] = _request_head(sum(map(len, spans)), service_name, version)
    return b"".join(spans)


def _append_spans(out: list[bytes], traces: Sequence[Trace]) -> None:
    """Append the span entries of ``traces``, sharing one request's caches among them."""
    request = _Request()
    for trace in traces:
        context = _TraceContext(trace, request)
        for obs in trace.observations:
            _encode_span(out, obs, context, request)


def encode_spans(trace: Trace) -> bytes:
    """Encode the spans of one trace as ``ScopeSpans.spans`` entries (each with its tag and
    length), ready to be joined with other traces' spans by ``frame_spans``.

    This is what the outbox keeps beside the trace info when a trace is encoded as it is
    recorded: a request is then the concatenation of stored spans behind a request head, with
    no decoding, building or encoding at send time. ``frame_spans([encode_spans(t) for t in
    traces]) == encode_bytes(traces)``: the caches of ``encode_bytes`` only reuse bytes.
    """
    spans: list[bytes] = []
    _append_spans(spans, (trace,))
    return b"".join(spans)


def frame_spans(
    spans: Sequence[bytes],
    *,
    service_name: str = SCOPE_NAME,
    version: str = __version__,
) -> bytes:
    """One ``ExportTraceServiceRequest`` from the ``encode_spans`` output of several traces.

    Returns:
        The uncompressed request body (empty when ``spans`` is).
    """
    if not spans:
        return b""
    return b"".join((_request_head(sum(map(len, spans)), service_name, version), *spans))


def encode_traces(
    traces: Sequence[Trace],
    *,
    service_name: str = SCOPE_NAME,
    version: str = __version__,
) -> ExportTraceServiceRequest:
    """Encode ``traces`` as an ``ExportTraceServiceRequest`` message (see ``encode_bytes``)."""
    message: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
        encode_bytes(traces, service_name=service_name, version=version)
    )
    return message

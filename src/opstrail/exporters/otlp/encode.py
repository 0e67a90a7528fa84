"""Trace trees -> OTLP ``ExportTraceServiceRequest`` (pure; contract §3).

The request is written straight in protobuf wire format: one ``ResourceSpans`` (resource
attribute ``service.name`` only, so nothing extra lands in every observation's metadata), one
``ScopeSpans`` named ``opstrail`` (never ``langfuse-sdk*``, which would make Langfuse hide unmapped
attributes), one span per observation.

Why hand-written wire bytes: building ``KeyValue`` messages through the protobuf API costs about
a microsecond per attribute, and a span carries 15-30 attributes. Writing bytes directly, and
encoding the trace-wide attributes (name, user, session, tags, metadata keys, release,
environment, version) once per trace and copying them into every span, makes encoding several
times faster. ``encode_traces`` parses the bytes back into the message with protobuf's C
decoder, and the tests decode every request with ``opentelemetry-proto`` to prove the bytes are
what the schema says.

Field numbers are from ``opentelemetry/proto/{collector/trace,trace,common,resource}/v1``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from opstrail import __version__
from opstrail.exporters.fields import (
    cost_details,
    is_scalar,
    iso_z,
    json_bytes,
    model_parameters,
    observation_bytes,
    unix_nanos,
    usage_details,
)
from opstrail.tracing.tree import Level, Observation, ObservationType, Trace
from opstrail.tracing.values import JsonValue

__all__ = ["SCOPE_NAME", "encode_bytes", "encode_traces"]

SCOPE_NAME: Final = "opstrail"

_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))
_PACK_U64: Final = struct.Struct("<Q").pack
_PACK_F64: Final = struct.Struct("<d").pack


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return b"".join((tag, _SMALL_VARINTS[size] if size < 0x80 else _varint(size), payload))


# AnyValue (common.proto): 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue{1 values}.
def _any_string(value: str) -> bytes:
    return _field(b"\x0a", value.encode("utf-8"))


def _any_scalar(value: str | bool | int | float) -> bytes:
    kind = type(value)
    if kind is str or (kind is not bool and isinstance(value, str)):
        return _any_string(value)  # type: ignore[arg-type]
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
        return _any_string(str(value))  # beyond int64: keep the digits as text
    return b"\x21" + _PACK_F64(value)


def _any_string_array(values: Sequence[str]) -> bytes:
    inner = b"".join(_field(b"\x0a", _any_string(v)) for v in values)
    return _field(b"\x2a", inner)


def _key(name: str) -> bytes:
    """KeyValue.key (field 1) of an attribute, pre-encoded."""
    return _field(b"\x0a", name.encode("utf-8"))


def _span_attr(key: bytes, any_value: bytes) -> bytes:
    """Span.attributes (field 9) entry: KeyValue{1 key, 2 value}."""
    size = len(any_value)
    total = len(key) + size + 2
    if total < 0x80:
        return b"".join(
            (b"\x4a", _SMALL_VARINTS[total], key, b"\x12", _SMALL_VARINTS[size], any_value)
        )
    return _field(b"\x4a", key + _field(b"\x12", any_value))


def _span_str_attr(key: bytes, value: str) -> bytes:
    return _span_bytes_attr(key, value.encode("utf-8"))


def _span_bytes_attr(key: bytes, data: bytes) -> bytes:
    """A string attribute from its UTF-8 bytes; the hot path of the encoder, so short values
    skip the generic length computation (every length fits one byte when the whole entry is
    under 128)."""
    size = len(data)
    total = len(key) + size + 4
    if total < 0x80:
        return b"".join(
            (
                b"\x4a",
                _SMALL_VARINTS[total],
                key,
                b"\x12",
                _SMALL_VARINTS[size + 2],
                b"\x0a",
                _SMALL_VARINTS[size],
                data,
            )
        )
    return _span_attr(key, _field(b"\x0a", data))


def _span_scalar_attr(key: bytes, value: str | bool | int | float) -> bytes:
    if type(value) is str:
        return _span_str_attr(key, value)
    return _span_attr(key, _any_scalar(value))


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

_LEVEL_ATTRS: Final = {level: _span_str_attr(_K_LEVEL, level.value) for level in Level}
_TYPE_ATTRS: Final = {kind: _span_str_attr(_K_TYPE, kind.value) for kind in ObservationType}

_SPAN_KIND_INTERNAL: Final = b"\x30\x01"  # Span.kind (field 6) = SPAN_KIND_INTERNAL
_STATUS_ERROR_CODE: Final = b"\x18\x02"  # Status.code (field 3) = STATUS_CODE_ERROR


_ScalarKey = tuple[str, type, str | bool | int | float]


def _named_attr(name: str, value: str | bool | int | float) -> bytes:
    """A scalar attribute from its key as text: one join for short strings (metadata keys and
    values mostly are), the generic path otherwise."""
    if type(value) is str:
        name_bytes = name.encode("utf-8")
        value_bytes = value.encode("utf-8")
        k, n = len(name_bytes), len(value_bytes)
        total = k + n + 6
        if total < 0x80:
            return b"".join(
                (
                    b"\x4a",
                    _SMALL_VARINTS[total],
                    b"\x0a",
                    _SMALL_VARINTS[k],
                    name_bytes,
                    b"\x12",
                    _SMALL_VARINTS[n + 2],
                    b"\x0a",
                    _SMALL_VARINTS[n],
                    value_bytes,
                )
            )
    return _span_scalar_attr(_key(name), value)


def _trace_wide(trace: Trace) -> bytes:
    """The attributes every span of ``trace`` repeats (contract §3.6), encoded once."""
    parts = [_span_str_attr(_K_TRACE_NAME, trace.name)]
    if trace.user_id is not None:
        parts.append(_span_str_attr(_K_USER, trace.user_id))
    if trace.session_id is not None:
        parts.append(_span_str_attr(_K_SESSION, trace.session_id))
    if trace.tags:
        parts.append(_span_attr(_K_TAGS, _any_string_array(trace.tags)))
    for key, value in trace.metadata.items():
        if value is None:
            continue  # an attribute cannot be null; an absent key reads the same in Langfuse
        if is_scalar(value):
            parts.append(_named_attr(_TRACE_METADATA_PREFIX + key, value))
        else:
            any_value = _field(b"\x0a", json_bytes(value))
            parts.append(_span_attr(_key(_TRACE_METADATA_PREFIX + key), any_value))
    if trace.release is not None:
        parts.append(_span_str_attr(_K_RELEASE, trace.release))
    parts.append(_span_str_attr(_K_ENVIRONMENT, trace.environment))
    return b"".join(parts)


def _observation_metadata(
    metadata: Mapping[str, JsonValue], attr_cache: dict[_ScalarKey, bytes]
) -> list[bytes]:
    parts = [_span_bytes_attr(_K_METADATA, json_bytes(metadata))]
    for key, value in metadata.items():
        if is_scalar(value):
            # Keys and many values repeat across spans (node_type, status): encode each pair
            # once per request. The type is part of the key because True == 1 == 1.0.
            cache_key = (key, type(value), value)
            attr = attr_cache.get(cache_key)
            if attr is None:
                attr = attr_cache[cache_key] = _named_attr(
                    _OBSERVATION_METADATA_PREFIX + key, value
                )
            parts.append(attr)
    return parts


def _encode_span(
    obs: Observation,
    trace: Trace,
    trace_id: bytes,
    trace_wide: bytes,
    trace_version: bytes,
    attr_cache: dict[_ScalarKey, bytes],
) -> bytes:
    name = obs.name.encode("utf-8")
    parts = [
        b"\x0a\x10",
        trace_id,
        b"\x12\x08",
        bytes.fromhex(obs.id),
    ]
    if obs.parent_id is not None:
        parts += (b"\x22\x08", bytes.fromhex(obs.parent_id))
    parts += (
        b"\x2a",
        _varint(len(name)),
        name,
        _SPAN_KIND_INTERNAL,
        b"\x39",
        _PACK_U64(unix_nanos(obs.start_time)),
        b"\x41",
        _PACK_U64(unix_nanos(obs.end_time)),
        _TYPE_ATTRS[obs.type],
        _LEVEL_ATTRS[obs.level],
        trace_wide,
    )
    if obs.version is not None:
        parts.append(_span_str_attr(_K_VERSION, obs.version))
    else:
        parts.append(trace_version)
    if obs.status_message is not None:
        parts.append(_span_str_attr(_K_STATUS_MESSAGE, obs.status_message))

    observation_input, observation_output = obs.input, obs.output
    if obs.parent_id is None:
        # The root observation holds the overall request and response (contract §3.6); a
        # trace-level value that differs from the root's own goes to the trace attributes.
        if observation_input is None:
            observation_input = trace.input
        elif trace.input is not None and trace.input != observation_input:
            parts.append(_span_bytes_attr(_K_TRACE_INPUT, observation_bytes(trace.input)))
        if observation_output is None:
            observation_output = trace.output
        elif trace.output is not None and trace.output != observation_output:
            parts.append(_span_bytes_attr(_K_TRACE_OUTPUT, observation_bytes(trace.output)))
    if observation_input is not None:
        parts.append(_span_bytes_attr(_K_INPUT, observation_bytes(observation_input)))
    if observation_output is not None:
        parts.append(_span_bytes_attr(_K_OUTPUT, observation_bytes(observation_output)))
    if obs.metadata:
        parts += _observation_metadata(obs.metadata, attr_cache)
    if obs.model is not None:
        parts.append(_span_str_attr(_K_MODEL, obs.model))
    if obs.model_parameters is not None:
        parts.append(
            _span_bytes_attr(_K_MODEL_PARAMS, json_bytes(model_parameters(obs.model_parameters)))
        )
    if obs.usage is not None:
        parts.append(_span_bytes_attr(_K_USAGE, json_bytes(usage_details(obs.usage))))
    if obs.cost is not None:
        parts.append(_span_bytes_attr(_K_COST, json_bytes(cost_details(obs.cost))))
    if obs.completion_start_time is not None:
        parts.append(_span_str_attr(_K_COMPLETION_START, iso_z(obs.completion_start_time)))
    if obs.level is Level.ERROR:
        status = _STATUS_ERROR_CODE
        if obs.status_message:
            status = _field(b"\x12", obs.status_message.encode("utf-8")) + status
        parts.append(_field(b"\x7a", status))  # Span.status (field 15)
    return _field(b"\x12", b"".join(parts))  # ScopeSpans.spans (field 2)


def _encode_trace_spans(trace: Trace, attr_cache: dict[_ScalarKey, bytes]) -> bytes:
    trace_id = bytes.fromhex(trace.id)
    trace_wide = _trace_wide(trace)
    trace_version = b"" if trace.version is None else _span_str_attr(_K_VERSION, trace.version)
    return b"".join(
        _encode_span(obs, trace, trace_id, trace_wide, trace_version, attr_cache)
        for obs in trace.observations
    )


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
    # KeyValue{key, value} as Resource.attributes (field 1).
    resource = _field(
        b"\x0a", _field(b"\x0a", _K_SERVICE_NAME + _field(b"\x12", _any_string(service_name)))
    )
    scope = _field(
        b"\x0a",
        _field(b"\x0a", SCOPE_NAME.encode("utf-8")) + _field(b"\x12", version.encode("utf-8")),
    )
    # Scalar metadata attributes repeat across spans; the cache lives only for this call.
    attr_cache: dict[_ScalarKey, bytes] = {}
    spans = b"".join(_encode_trace_spans(trace, attr_cache) for trace in traces)
    scope_spans = _field(b"\x12", scope + spans)
    resource_spans = resource + scope_spans
    return _field(b"\x0a", resource_spans)


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

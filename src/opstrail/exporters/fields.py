"""Field conversions shared by both wire formats: times, JSON text, usage, cost, parameters.

Pure functions over ``opstrail.tracing.tree`` values. Both serializers call these, so the two
paths agree on every value Langfuse stores (a destination can switch paths without a change in
what it sees).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, TypeGuard

import orjson

from opstrail.tracing.tree import Cost, Usage
from opstrail.tracing.values import JsonValue

SDK_NAME: Final = "opstrail"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TWO_DIGITS: Final = tuple(f"{n:02d}" for n in range(100))

# Compact, UTF-8 kept, NaN refused (JSON.parse on the server would fail on NaN). The encoder
# object holds only its options, so sharing it is safe.
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def iso_z(value: datetime) -> str:
    """Format a UTC datetime as ISO 8601 with microseconds and a ``Z`` suffix.

    Exactly what ``isoformat(timespec="microseconds")`` writes, with ``Z`` for ``+00:00``, at
    a third of the cost: the trace tree stores UTC already (``require_utc``), and both
    serializers format several times per observation.
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    two = _TWO_DIGITS  # every field from this table: no format specs to parse
    year = value.year
    micro = value.microsecond
    return (
        f"{two[year // 100]}{two[year % 100]}-{two[value.month]}-{two[value.day]}T"
        f"{two[value.hour]}:{two[value.minute]}:{two[value.second]}."
        f"{two[micro // 10000]}{two[micro // 100 % 100]}{two[micro % 100]}Z"
    )


def unix_nanos(value: datetime) -> int:
    """Exact epoch nanoseconds of a timezone-aware datetime (no float rounding)."""
    delta = value - _EPOCH
    return ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def _finite(value: JsonValue) -> JsonValue:
    """Replace non-finite floats (NaN, ±inf) by ``None``, recursively: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_default(value: object) -> object:
    """orjson's ``default`` for ``json_bytes``: turn what orjson does not know (a non-dict
    Mapping) into what it does. A hot path may call ``orjson.dumps(value,
    default=json_default)`` itself and fall back to ``json_bytes`` on TypeError."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def json_bytes(value: object) -> bytes:
    """Serialize a JSON value compactly as UTF-8; non-finite floats become ``null``.

    orjson does the work (several times faster than the standard library, which matters on
    the encoder's hot path); the standard library takes over for what orjson refuses, such
    as integers beyond 64 bits.
    """
    try:
        return orjson.dumps(value, default=json_default)
    except TypeError:
        return _JSON.encode(_finite(_plain(value))).encode("utf-8")  # type: ignore[arg-type]


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def json_text(value: object) -> str:
    """``json_bytes`` as text."""
    return json_bytes(value).decode("utf-8")


def observation_bytes(value: JsonValue) -> bytes:
    """The wire bytes of an input or output: a plain string stays text, anything else JSON."""
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return orjson.dumps(value, default=json_default)  # json_bytes, minus a call on the hot path
    except TypeError:
        return json_bytes(value)


def observation_text(value: JsonValue) -> str:
    """The wire text of an input or output: a plain string stays text, anything else JSON."""
    if isinstance(value, str):
        return value
    return json_text(value)


def usage_details(usage: Usage) -> dict[str, int]:
    """Langfuse ``usageDetails``: exclusive buckets ``input``, ``output``, the extra detail
    buckets, and ``total``."""
    details: dict[str, int] = {"input": usage.input, "output": usage.output}
    details.update(usage.details)
    details["total"] = usage.total
    return details


def cost_details(cost: Cost) -> dict[str, float]:
    """Langfuse ``costDetails`` in USD; ``total`` is always present (else Langfuse shows none)."""
    details: dict[str, float] = {}
    if cost.input is not None:
        details["input"] = cost.input
    if cost.output is not None:
        details["output"] = cost.output
    details["total"] = cost.total
    return details


def _map_value(value: JsonValue) -> JsonValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    # Langfuse's MapValue has no nested objects or mixed lists (a per-event 400 on the legacy
    # path): such a parameter travels as its JSON text instead.
    return json_text(value)


# MapValue types that pass unchanged, by exact type: most parameters are numbers.
_MAP_SCALAR_TYPES: Final = frozenset({type(None), str, int, float, bool})


def model_parameters(params: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """Model parameters restricted to Langfuse's ``MapValue`` (string, number, bool, string
    list, null); any other value becomes its JSON text."""
    if _MAP_SCALAR_TYPES.issuperset(map(type, params.values())):
        return dict(params)  # the usual case (numbers), checked without a Python-level loop
    return {key: _map_value(value) for key, value in params.items()}


_SCALAR_TYPES: Final = frozenset({str, bool, int, float})
_SCALAR_CLASSES: Final = (str, bool, int, float)


def is_scalar(value: JsonValue) -> TypeGuard[str | bool | int | float]:
    """True for a value that an OTel attribute holds natively (str, bool, int, float)."""
    return type(value) in _SCALAR_TYPES or isinstance(value, _SCALAR_CLASSES)

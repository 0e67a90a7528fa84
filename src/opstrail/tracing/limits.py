"""Size caps for trace fields and the visible marker left where something was cut.

Langfuse and proxies in front of it refuse or drop large events (about 1 MB per event,
3.5-5 MB per request). opstrail cuts fields itself, says so in the value and in metadata,
and never drops a whole trace for one field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

import orjson

from opstrail.tracing.values import JsonValue

FIELD_CAP_BYTES: Final = 256 * 1024
DOCUMENT_CAP_CHARS: Final = 2_000
ERROR_CAP_CHARS: Final = 500
TRUNCATION_METADATA_KEY: Final = "opstrail_truncated"

# What ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` builds on every call;
# the encoder holds only its options, so one shared instance gives the same text.
_COMPACT: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

# orjson spells strings (ensure_ascii=False; checked over every code point), integers,
# booleans and null exactly as the standard library does, and so dicts and lists of them.
# Only these exact types are measured with orjson: it spells enums, UUIDs and subclasses its
# own way (or accepts what the standard library refuses).
_JSON_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
# Floats may differ (``1e-07`` vs ``1e-7``, ``NaN`` vs ``null``): Python writes a float in at
# most 24 characters and orjson in at least 3, so each adds at most 21 bytes; and in compact
# JSON ``n`` floats take at least ``4n - 1`` bytes, so ``size`` bytes hold at most
# ``(size + 1) / 4`` floats. Hence the standard library's size is at most
# ``size + 21 * (size + 1) / 4``, whatever the value holds.
_FLOAT_SLACK_BYTES: Final = 24 - 3
# Deeper values take the slow path (orjson itself stops at 255 levels).
_MAX_FAST_DEPTH: Final = 64


def truncation_marker(removed_bytes: int) -> str:
    """The text appended where ``removed_bytes`` bytes were cut."""
    return f"…[truncated {removed_bytes} bytes]"


def truncate_text(text: str, cap_bytes: int) -> str:
    """Cut ``text`` to at most ``cap_bytes`` UTF-8 bytes plus a marker; unchanged if it fits."""
    encoded = text.encode("utf-8")
    if len(encoded) <= cap_bytes:
        return text
    kept = encoded[:cap_bytes].decode("utf-8", errors="ignore")
    return kept + truncation_marker(len(encoded) - len(kept.encode("utf-8")))


def truncate_chars(text: str, cap_chars: int) -> str:
    """Cut ``text`` to ``cap_chars`` characters plus a marker; unchanged if it fits."""
    if len(text) <= cap_chars:
        return text
    removed = len(text[cap_chars:].encode("utf-8"))
    return text[:cap_chars] + truncation_marker(removed)


def json_size(value: JsonValue) -> int:
    """Bytes of ``value`` serialized as compact JSON."""
    return len(_COMPACT.encode(value).encode("utf-8"))


def _exact_json(value: object, depth: int = 0) -> bool:
    """True when ``value`` is made only of exact JSON types (dict, list, tuple, str, int,
    float, bool, None), nested at most ``_MAX_FAST_DEPTH`` deep. Keys are left to orjson,
    which refuses any but strings."""
    if type(value) is dict:
        members: Iterable[object] = value.values()
    elif type(value) is list or type(value) is tuple:
        members = value
    else:
        return type(value) in _JSON_SCALARS
    scalars = _JSON_SCALARS
    for member in members:
        if type(member) in scalars:
            continue
        if depth >= _MAX_FAST_DEPTH or not _exact_json(member, depth + 1):
            return False
    return True


def truncate_json(value: JsonValue, cap_bytes: int) -> tuple[JsonValue, bool]:
    """Return ``value`` if its JSON fits in ``cap_bytes``, else its JSON text cut with a
    marker (a string), and whether it was cut."""
    # Quick answers first, each provably the one measuring below would give; only what
    # they cannot settle is measured with the standard library.
    if type(value) is str:
        # ASCII text (no lone surrogate, so it encodes) is at most 6 bytes a character in
        # JSON (``\u001f``): most fields fit without being serialized at all.
        if value.isascii() and 6 * len(value) + 2 <= cap_bytes:
            return value, False
        slack = 0  # no float: orjson spells text exactly as the standard library does
    elif _exact_json(value):
        slack = _FLOAT_SLACK_BYTES
    else:
        slack = -1  # orjson may spell it differently, or accept what the library refuses
    if slack >= 0:
        # orjson is several times faster; what it refuses (integers beyond 64 bits, lone
        # surrogates, keys that are not strings) is left to the standard library, which
        # keeps its errors.
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:
            size = -1
        # Integer form of size + slack * (size + 1) / 4 <= cap_bytes (see _FLOAT_SLACK_BYTES).
        if size >= 0 and 4 * size + slack * (size + 1) <= 4 * cap_bytes:
            return value, False
    size = json_size(value)
    if size <= cap_bytes:
        return value, False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return truncate_text(text, cap_bytes), True

"""Size caps for trace fields and the visible marker left where something was cut.

Langfuse and proxies in front of it refuse or drop large events (about 1 MB per event,
3.5-5 MB per request). opstrail cuts fields itself, says so in the value and in metadata,
and never drops a whole trace for one field.
"""

from __future__ import annotations

import json
from typing import Final

from opstrail.tracing.values import JsonValue

FIELD_CAP_BYTES: Final = 256 * 1024
DOCUMENT_CAP_CHARS: Final = 2_000
ERROR_CAP_CHARS: Final = 500
TRUNCATION_METADATA_KEY: Final = "opstrail_truncated"


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
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def truncate_json(value: JsonValue, cap_bytes: int) -> tuple[JsonValue, bool]:
    """Return ``value`` if its JSON fits in ``cap_bytes``, else its JSON text cut with a
    marker (a string), and whether it was cut."""
    size = json_size(value)
    if size <= cap_bytes:
        return value, False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return truncate_text(text, cap_bytes), True

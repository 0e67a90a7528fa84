"""Value rules shared by both write paths: times, environments, tags, JSON text, usage, cost."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final

OBSERVATION_TYPES: Final = frozenset(
    {
        "span",
        "generation",
        "event",
        "embedding",
        "agent",
        "tool",
        "chain",
        "retriever",
        "guardrail",
        "evaluator",
    }
)
_ENV_RE: Final = re.compile(r"^[a-z0-9_-]+$")
# ISO 8601 with a mandatory zone (Z or +hh:mm), as zod's z.iso.datetime({offset: true}).
_OFFSET_TIME_RE: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$"
)


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z`` (Langfuse's storage precision)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now_text() -> str:
    """The current time as :func:`format_time` text."""
    return format_time(datetime.now(UTC))


def parse_offset_time(value: Any) -> str | None:
    """Normalise an ISO time that carries a zone; None when it is not one (naive or garbage)."""
    if not isinstance(value, str) or not _OFFSET_TIME_RE.match(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return format_time(moment)


def normalise_environment(value: str) -> str:
    """Langfuse's rule: lowercase, strip ``langfuse`` prefixes, cut to 40, else ``default``."""
    text = value.lower()
    while True:
        stripped = re.sub(r"^langfuse[-_]?", "", text)
        if stripped == text:
            break
        text = stripped
    text = text[:40]
    return text if text and _ENV_RE.match(text) else "default"


def parse_json_text(value: Any) -> Any:
    """A JSON string as its value; a plain (non-JSON) string is kept as text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_tags(value: Any) -> list[str]:
    """Tags from a string array, a JSON array string or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    if isinstance(value, str):
        parsed = parse_json_text(value)
        if isinstance(parsed, list):
            return [str(v) for v in parsed if v is not None]
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(value)]


def _non_negative_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


_OPENAI_CHAT: Final = ("prompt_tokens", "completion_tokens", "total_tokens")
_OPENAI_RESPONSES: Final = ("input_tokens", "output_tokens", "total_tokens")


def usage_details(value: dict[str, Any] | None) -> dict[str, int] | None:
    """Langfuse's usage rules: a free map of non-negative ints, or an OpenAI usage shape.

    OpenAI detail keys become ``input_<key>`` / ``output_<key>`` and are subtracted from
    ``input`` / ``output`` (Langfuse's buckets are exclusive).
    """
    if value is None:
        return None
    for (inp, out, total), details in (
        (_OPENAI_CHAT, ("prompt_tokens_details", "completion_tokens_details")),
        (_OPENAI_RESPONSES, ("input_tokens_details", "output_tokens_details")),
    ):
        if inp in value and out in value:
            result = {
                "input": _non_negative_int(value[inp]) or 0,
                "output": _non_negative_int(value[out]) or 0,
            }
            if _non_negative_int(value.get(total)) is not None:
                result["total"] = int(value[total])
            for side, key in (("input", details[0]), ("output", details[1])):
                for detail, amount in (value.get(key) or {}).items():
                    count = _non_negative_int(amount)
                    if count is not None:
                        result[f"{side}_{detail}"] = count
                        result[side] = max(0, result[side] - count)
            return result
    kept = {k: n for k, v in value.items() if (n := _non_negative_int(v)) is not None}
    return kept


def cost_details(value: dict[str, Any] | None) -> dict[str, float] | None:
    """Non-negative numbers only (USD); other entries are dropped, as Langfuse does."""
    if value is None:
        return None
    return {
        k: float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
    }

"""Validation and mapping of legacy batch events (``POST /api/public/ingestion``) and scores.

Rules follow Langfuse's zod schemas (``packages/shared/src/server/ingestion/types.ts``): unknown
keys are stripped, every timestamp needs a zone, levels are upper case, span/event/generation
bodies need an ``id``. A failure yields the ``error`` text of a per-event 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from opstrail.collector.config import WriteMode
from opstrail.collector.values import (
    cost_details,
    normalise_environment,
    parse_offset_time,
    usage_details,
)

LEVELS: Final = frozenset({"DEBUG", "DEFAULT", "WARNING", "ERROR"})
SCORE_TYPES: Final = frozenset({"NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT", "CORRECTION"})
USAGE_UNITS: Final = frozenset(
    {"CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"}
)
V3_ONLY_TYPES: Final = frozenset(
    {
        "agent-create",
        "tool-create",
        "chain-create",
        "retriever-create",
        "evaluator-create",
        "embedding-create",
        "guardrail-create",
    }
)
BASE_TYPES: Final = frozenset(
    {
        "trace-create",
        "span-create",
        "span-update",
        "generation-create",
        "generation-update",
        "event-create",
        "score-create",
        "sdk-log",
        "observation-create",
        "observation-update",
    }
)
EVENTS_ONLY_ACCEPTED: Final = frozenset({"score-create", "sdk-log"})
MAX_EVENT_ID: Final = 800
MAX_TRACE_NAME: Final = 1000
MAX_TEXT_SCORE: Final = 500


OBSERVATION_KEYS: Final = (
    "id",
    "traceId",
    "parentObservationId",
    "type",
    "name",
    "startTime",
    "endTime",
    "completionStartTime",
    "level",
    "statusMessage",
    "input",
    "output",
    "metadata",
    "model",
    "modelParameters",
    "usageDetails",
    "costDetails",
    "promptName",
    "promptVersion",
    "environment",
    "version",
)


class EventInvalid(Exception):
    """A per-event schema violation; ``str()`` is the validation text."""


def accepted_types(mode: WriteMode) -> frozenset[str]:
    """Event types this write mode knows (events_only knows them all but accepts two)."""
    return BASE_TYPES if mode == "v2" else BASE_TYPES | V3_ONLY_TYPES


def check_envelope(event: Any) -> tuple[str, str, str, dict[str, Any]]:
    """Validate the event envelope; returns (event id, type, timestamp, body).

    Raises:
        EventInvalid: a missing or malformed id, type, timestamp or body.
    """
    if not isinstance(event, dict):
        raise EventInvalid("event must be an object")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID:
        raise EventInvalid("id: must be a string of 1 to 800 characters")
    if "\r" in event_id:
        raise EventInvalid("id: must not contain a carriage return")
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise EventInvalid("type: required string")
    timestamp = parse_offset_time(event.get("timestamp"))
    if timestamp is None:
        raise EventInvalid(
            "timestamp: required ISO 8601 datetime with a time zone offset (Z or +hh:mm)"
        )
    body = event.get("body")
    if not isinstance(body, dict):
        raise EventInvalid("body: required object")
    return event_id, event_type, timestamp, body


class _Body:
    """Reads typed fields of one body, collecting the cleaned values."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.out: dict[str, Any] = {}

    def string(self, key: str, *, required: bool = False, max_len: int | None = None) -> None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise EventInvalid(f"body.{key}: required string")
            return
        if not isinstance(value, str):
            raise EventInvalid(f"body.{key}: expected string")
        if max_len is not None and len(value) > max_len:
            raise EventInvalid(f"body.{key}: at most {max_len} characters")
        self.out[key] = value

    def time(self, key: str) -> None:
        value = self.raw.get(key)
        if value is None:
            return
        parsed = parse_offset_time(value)
        if parsed is None:
            raise EventInvalid(
                f"body.{key}: invalid ISO 8601 datetime; a time zone offset is required"
            )
        self.out[key] = parsed

    def any(self, key: str) -> None:
        if key in self.raw:
            self.out[key] = self.raw[key]

    def boolean(self, key: str) -> None:
        value = self.raw.get(key)
        if value is None:
            return
        if not isinstance(value, bool):
            raise EventInvalid(f"body.{key}: expected boolean")
        self.out[key] = value

    def string_list(self, key: str) -> None:
        value = self.raw.get(key)
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise EventInvalid(f"body.{key}: expected an array of strings")
        self.out[key] = value

    def level(self) -> None:
        value = self.raw.get("level")
        if value is None:
            return
        if value not in LEVELS:
            raise EventInvalid(
                f"body.level: invalid enum value {value!r}; expected DEBUG, DEFAULT, WARNING, ERROR"
            )
        self.out["level"] = value

    def environment(self, mode: WriteMode) -> None:
        value = self.raw.get("environment")
        if value is None or mode == "v2":  # v2 has no environment: stripped silently
            return
        if not isinstance(value, str):
            raise EventInvalid("body.environment: expected string")
        self.out["environment"] = normalise_environment(value)


def trace_body(raw: Mapping[str, Any], mode: WriteMode) -> dict[str, Any]:
    """Validate a TraceBody; returns the cleaned body."""
    body = _Body(raw)
    body.string("id")
    body.time("timestamp")
    body.string("name", max_len=MAX_TRACE_NAME)
    for key in ("input", "output", "metadata"):
        body.any(key)
    for key in ("sessionId", "userId", "release", "version"):
        body.string(key)
    body.environment(mode)
    body.boolean("public")
    body.string_list("tags")
    return body.out


def observation_body(raw: Mapping[str, Any], mode: WriteMode, *, kind: str) -> dict[str, Any]:
    """Validate a span, event or generation-like body (``kind``: span, event, generation)."""
    body = _Body(raw)
    body.string("id", required=True)
    for key in ("traceId", "name", "statusMessage", "parentObservationId", "version"):
        body.string(key)
    body.time("startTime")
    for key in ("metadata", "input", "output"):
        body.any(key)
    body.level()
    body.environment(mode)
    if kind != "event":
        body.time("endTime")
    if kind == "generation":
        body.time("completionStartTime")
        body.string("model")
        _model_parameters(raw, body.out)
        _usage(raw, body.out, mode)
        _prompt(raw, body.out)
    if kind == "observation":
        obs_type = raw.get("type")
        if obs_type not in ("GENERATION", "SPAN", "EVENT"):
            raise EventInvalid("body.type: expected GENERATION, SPAN or EVENT")
        body.out["type"] = obs_type
        body.time("endTime")
        body.time("completionStartTime")
        body.string("model")
        _model_parameters(raw, body.out)
        _usage(raw, body.out, mode)
    return body.out


def _model_parameters(raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    value = raw.get("modelParameters")
    if value is None:
        return
    if not isinstance(value, dict):
        raise EventInvalid("body.modelParameters: expected object")
    for key, item in value.items():
        ok = (
            item is None
            or isinstance(item, str | int | float | bool)
            or (isinstance(item, list) and all(isinstance(v, str) for v in item))
            or (isinstance(item, dict) and all(isinstance(v, str) for v in item.values()))
        )
        if not ok:
            raise EventInvalid(f"body.modelParameters.{key}: unsupported value type")
    out["modelParameters"] = value


def _usage(raw: Mapping[str, Any], out: dict[str, Any], mode: WriteMode) -> None:
    usage = raw.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            raise EventInvalid("body.usage: expected object")
        for key in ("input", "output", "total", "promptTokens", "completionTokens", "totalTokens"):
            value = usage.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise EventInvalid(f"body.usage.{key}: expected integer")
        for key in ("inputCost", "outputCost", "totalCost"):
            value = usage.get(key)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool)
            ):
                raise EventInvalid(f"body.usage.{key}: expected number")
        unit = usage.get("unit")
        if unit is not None and unit not in USAGE_UNITS:
            raise EventInvalid(f"body.usage.unit: invalid enum value {unit!r}")
        out["usage"] = usage
    if mode == "v2":  # usageDetails/costDetails do not exist in v2: stripped silently
        return
    details = raw.get("usageDetails")
    if details is not None:
        if not isinstance(details, dict):
            raise EventInvalid("body.usageDetails: expected object")
        out["usageDetails"] = details
    costs = raw.get("costDetails")
    if costs is not None:
        if not isinstance(costs, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in costs.values()
        ):
            raise EventInvalid("body.costDetails: expected an object of numbers")
        out["costDetails"] = costs


def _prompt(raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    name, version = raw.get("promptName"), raw.get("promptVersion")
    if (name is None) != (version is None):
        raise EventInvalid("body: promptName and promptVersion must be set together")
    if name is not None:
        if not isinstance(name, str) or not isinstance(version, int):
            raise EventInvalid("body: promptName must be a string and promptVersion an int")
        out["promptName"], out["promptVersion"] = name, version


def score_body(raw: Mapping[str, Any], mode: WriteMode) -> dict[str, Any]:
    """Validate a score body (legacy ``score-create`` and ``POST /api/public/scores``)."""
    body = _Body(raw)
    body.string("id")
    for key in (
        "traceId",
        "observationId",
        "sessionId",
        "datasetRunId",
        "comment",
        "configId",
        "queueId",
    ):
        body.string(key)
    body.string("name", required=True)
    body.any("metadata")
    body.environment(mode)
    data_type = raw.get("dataType")
    if data_type is not None and data_type not in SCORE_TYPES:
        raise EventInvalid(f"body.dataType: invalid enum value {data_type!r}")
    value = raw.get("value")
    if value is None:
        raise EventInvalid("body.value: required")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number and not isinstance(value, str):
        raise EventInvalid("body.value: expected number or string")
    kind = data_type or ("NUMERIC" if is_number else "CATEGORICAL")
    if kind in ("NUMERIC", "BOOLEAN") and not is_number:
        raise EventInvalid(f"body.value: a {kind} score needs a number")
    if kind == "BOOLEAN" and value not in (0, 1):
        raise EventInvalid("body.value: a BOOLEAN score is 0 or 1")
    if kind in ("CATEGORICAL", "TEXT") and not isinstance(value, str):
        raise EventInvalid(f"body.value: a {kind} score needs a string")
    if kind == "TEXT" and not 1 <= len(value) <= MAX_TEXT_SCORE:
        raise EventInvalid("body.value: a TEXT score has 1 to 500 characters")
    body.out["value"] = value
    body.out["dataType"] = kind
    return body.out


def observation_record(event_type: str, body: dict[str, Any], envelope_time: str) -> dict[str, Any]:
    """The observation fields a legacy event sets (updates set only what they carry)."""
    kind = event_type.rsplit("-", 1)[0]
    record: dict[str, Any] = dict(body)
    record["type"] = body.get("type") or kind.upper()
    if event_type.endswith("-create"):
        record.setdefault("startTime", envelope_time)
        record.setdefault("level", "DEFAULT")
        record.setdefault("environment", "default")
        if kind == "event":
            record.setdefault("endTime", record["startTime"])
    usage = body.get("usage")
    if isinstance(usage, dict) and "usageDetails" not in record:
        record["usageDetails"] = _usage_from_legacy(usage)
    if isinstance(usage, dict) and "costDetails" not in record:
        costs = {
            k.removesuffix("Cost"): usage[k]
            for k in ("inputCost", "outputCost", "totalCost")
            if usage.get(k) is not None
        }
        if costs:
            record["costDetails"] = costs
    if isinstance(record.get("usageDetails"), dict):
        record["usageDetails"] = usage_details(record["usageDetails"])
    if isinstance(record.get("costDetails"), dict):
        record["costDetails"] = cost_details(record["costDetails"])
    record["eventType"] = event_type
    record["eventTimestamp"] = envelope_time
    # Same keys as OTLP-born observations, so readers see one shape; None never overwrites.
    return {key: record.get(key) for key in OBSERVATION_KEYS} | record


def _usage_from_legacy(usage: Mapping[str, Any]) -> dict[str, int]:
    pairs = {
        "input": usage.get("input", usage.get("promptTokens")),
        "output": usage.get("output", usage.get("completionTokens")),
        "total": usage.get("total", usage.get("totalTokens")),
    }
    return {k: v for k, v in pairs.items() if isinstance(v, int) and v >= 0}


BodyCheck = Callable[[Mapping[str, Any], WriteMode], dict[str, Any]]


def body_check(event_type: str) -> BodyCheck:
    """The body validator of a known event type."""
    if event_type == "trace-create":
        return trace_body
    if event_type == "score-create":
        return score_body
    kind = event_type.rsplit("-", 1)[0]
    if kind == "event":
        return lambda raw, mode: observation_body(raw, mode, kind="event")
    if kind == "span":
        return lambda raw, mode: observation_body(raw, mode, kind="span")
    if kind == "observation":
        return lambda raw, mode: observation_body(raw, mode, kind="observation")
    return lambda raw, mode: observation_body(raw, mode, kind="generation")

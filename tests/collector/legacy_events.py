"""Legacy batch events for the collector tests (written by hand, not by the exporters)."""

from __future__ import annotations

from typing import Any

TRACE_ID = "5c0ffee0000000000000000000000001"
SPAN_ID = "b0b0b0b0b0b0b0b1"
GEN_ID = "b0b0b0b0b0b0b0b2"
TS = "2026-08-22T10:00:00.000Z"


def event(event_id: str, event_type: str, body: dict[str, Any], ts: str = TS) -> dict[str, Any]:
    """One batch event envelope."""
    return {"id": event_id, "type": event_type, "timestamp": ts, "body": body}


def trace_create(**extra: Any) -> dict[str, Any]:
    """A complete trace-create event."""
    return event(
        "e-trace",
        "trace-create",
        {
            "id": TRACE_ID,
            "timestamp": TS,
            "name": "workflow_run-1",
            "userId": "u-1",
            "sessionId": "s-1",
            "tags": ["workflow"],
            "metadata": {"app_id": "a"},
            **extra,
        },
    )


def span_create(**extra: Any) -> dict[str, Any]:
    """A complete span-create event under the trace."""
    return event(
        "e-span",
        "span-create",
        {
            "id": SPAN_ID,
            "traceId": TRACE_ID,
            "name": "workflow",
            "startTime": TS,
            "endTime": "2026-08-22T10:00:02.000Z",
            "input": {"q": 1},
            "output": {"a": 2},
            **extra,
        },
    )


def generation_create(**extra: Any) -> dict[str, Any]:
    """A complete generation-create event under the span."""
    return event(
        "e-gen",
        "generation-create",
        {
            "id": GEN_ID,
            "traceId": TRACE_ID,
            "parentObservationId": SPAN_ID,
            "name": "llm",
            "startTime": "2026-08-22T10:00:00.500Z",
            "endTime": "2026-08-22T10:00:01.500+00:00",
            "model": "gpt-4o-mini",
            "usageDetails": {"input": 10, "output": 5, "total": 15},
            "costDetails": {"total": 0.001},
            "level": "DEFAULT",
            **extra,
        },
    )


def score_create(**extra: Any) -> dict[str, Any]:
    """A score-create event on the trace."""
    return event(
        "e-score",
        "score-create",
        {
            "id": "score-1",
            "traceId": TRACE_ID,
            "name": "user-feedback",
            "value": 1,
            "dataType": "BOOLEAN",
            **extra,
        },
    )

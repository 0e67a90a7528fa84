"""Legacy batch endpoint: per-version acceptance, per-event 400s, envelope and size limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opstrail.collector.testing import CollectorHandle, running_collector

from .conftest import KEYS
from .legacy_events import (
    GEN_ID,
    SPAN_ID,
    TRACE_ID,
    event,
    generation_create,
    score_create,
    span_create,
    trace_create,
)

PATH = "/api/public/ingestion"
AUTH = ("pk-lf-test", "sk-lf-test")


@pytest.fixture(name="v3")
def _v3() -> Iterator[CollectorHandle]:
    """A collector imitating the last Langfuse v3."""
    with running_collector(keys=KEYS, langfuse_version="3.225.4") as handle:
        yield handle


def _post(collector: CollectorHandle, batch: list[Any], auth: Any = AUTH) -> httpx.Response:
    return httpx.post(collector.url + PATH, json={"batch": batch}, auth=auth, timeout=10)


def test_ingestion_rejects_trace_events_when_imitating_v4(collector: CollectorHandle) -> None:
    """v4 answers 207 with 'Event type not accepted' for every non-score event, stores none."""
    response = _post(
        collector, [trace_create(), span_create(), generation_create(), score_create()]
    )
    assert response.status_code == 207
    body = response.json()
    assert body["successes"] == [{"id": "e-score", "status": 201}]
    assert [(e["id"], e["status"], e["message"]) for e in body["errors"]] == [
        ("e-trace", 400, "Event type not accepted"),
        ("e-span", 400, "Event type not accepted"),
        ("e-gen", 400, "Event type not accepted"),
    ]
    assert collector.traces() == []
    assert [s["id"] for s in collector.scores()] == ["score-1"]


def test_ingestion_stores_trace_tree_when_imitating_v3(v3: CollectorHandle) -> None:
    """v3 accepts trace, span, generation and agent-like events and stores the tree."""
    agent = event(
        "e-agent",
        "agent-create",
        {
            "id": "b0b0b0b0b0b0b0b3",
            "traceId": TRACE_ID,
            "parentObservationId": SPAN_ID,
            "name": "agent",
            "startTime": "2026-08-22T10:00:00Z",
        },
    )
    response = _post(v3, [trace_create(), span_create(), generation_create(), agent])
    assert response.status_code == 207
    assert response.json()["errors"] == []
    assert len(response.json()["successes"]) == 4
    [trace] = v3.traces()
    assert (trace["name"], trace["userId"], trace["sessionId"]) == ("workflow_run-1", "u-1", "s-1")
    assert trace["timestamp"] == "2026-08-22T10:00:00.000Z"
    by_id = {o["id"]: o for o in trace["observations"]}
    assert by_id[SPAN_ID]["type"] == "SPAN"
    assert by_id[GEN_ID]["type"] == "GENERATION"
    assert by_id[GEN_ID]["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert by_id[GEN_ID]["endTime"] == "2026-08-22T10:00:01.500Z"
    assert by_id["b0b0b0b0b0b0b0b3"]["type"] == "AGENT"


def test_ingestion_merges_update_into_observation_when_update_follows_create(
    v3: CollectorHandle,
) -> None:
    """A span-update merges into the span and is not counted as a duplicate copy."""
    update = event(
        "e-upd",
        "span-update",
        {"id": SPAN_ID, "traceId": TRACE_ID, "output": {"a": 3}, "level": "WARNING"},
    )
    _post(v3, [span_create(), update])
    [obs] = v3.observations()
    assert (obs["output"], obs["level"], obs["copies"]) == ({"a": 3}, "WARNING", 1)


def test_ingestion_refuses_v3_only_types_when_imitating_v2() -> None:
    """v2 does not know agent-create and silently strips usageDetails."""
    with running_collector(langfuse_version="2.95.12") as collector:
        agent = event("e-agent", "agent-create", {"id": "b0b0b0b0b0b0b0b3"})
        response = _post(collector, [generation_create(), agent])
        body = response.json()
        assert [e["id"] for e in body["errors"]] == ["e-agent"]
        assert body["errors"][0]["message"] == "Invalid request data"
        [obs] = collector.observations()
        assert obs["usageDetails"] is None
        assert obs["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    "bad_event",
    [
        event(
            "e-naive", "span-create", {"id": SPAN_ID, "traceId": TRACE_ID}, ts="2026-08-22T10:00:00"
        ),
        span_create(startTime="2026-08-22T10:00:00.000"),
        generation_create(completionStartTime="yesterday"),
        span_create(level="warning"),
        event("e-noid", "span-create", {"traceId": TRACE_ID, "name": "x"}),
        generation_create(promptName="p"),
        trace_create(tags="workflow"),
        event("e-type", "widget-create", {"id": "x"}),
    ],
)
def test_ingestion_answers_per_event_400_when_event_breaks_schema(
    v3: CollectorHandle, bad_event: dict[str, Any]
) -> None:
    """Naive timestamps, lowercase levels, missing body ids etc. fail only that event."""
    response = _post(v3, [bad_event, score_create()])
    assert response.status_code == 207
    body = response.json()
    assert body["successes"] == [{"id": "e-score", "status": 201}]
    [error] = body["errors"]
    assert (error["id"], error["status"], error["message"]) == (
        bad_event["id"],
        400,
        "Invalid request data",
    )
    assert error["error"]
    assert v3.observations() == []


def test_ingestion_accepts_but_drops_trace_when_body_id_is_missing(v3: CollectorHandle) -> None:
    """Like Langfuse, a trace-create without body.id is answered 201 and never stored."""
    response = _post(v3, [event("e-t", "trace-create", {"name": "lost"})])
    assert response.json()["successes"] == [{"id": "e-t", "status": 201}]
    assert v3.traces() == []


def test_ingestion_refuses_whole_request_when_envelope_has_no_batch(v3: CollectorHandle) -> None:
    """A body without a batch array is a whole-request 400."""
    response = httpx.post(v3.url + PATH, json={"events": []}, auth=AUTH)
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid request data"


def test_ingestion_answers_413_when_batch_exceeds_4_5_mb(v3: CollectorHandle) -> None:
    """Batches above 4.5 MB are refused before parsing."""
    big = span_create(input="x" * (5 * 1024 * 1024))
    response = httpx.post(
        v3.url + PATH,
        content=json.dumps({"batch": [big]}),
        auth=AUTH,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert v3.observations() == []


def test_ingestion_refuses_with_unauthorized_error_when_keys_are_wrong(
    v3: CollectorHandle,
) -> None:
    """Wrong keys get Langfuse's UnauthorizedError body; org keys get the legacy 401 text."""
    wrong = _post(v3, [span_create()], auth=("pk-lf-test", "x"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "UnauthorizedError"
    org = _post(v3, [span_create()], auth=("pk-lf-org", "sk-lf-org"))
    assert org.status_code == 401
    assert "organization key" in org.json()["message"]


def test_ingestion_denies_non_score_events_when_bearer_scope_is_used(v3: CollectorHandle) -> None:
    """A Bearer public key may send scores only; other events get a per-event 401."""
    response = httpx.post(
        v3.url + PATH,
        json={"batch": [span_create(), score_create()]},
        headers={"authorization": "Bearer pk-lf-test"},
    )
    body = response.json()
    assert body["successes"] == [{"id": "e-score", "status": 201}]
    assert [(e["id"], e["status"]) for e in body["errors"]] == [("e-span", 401)]


def test_ingestion_skips_sdk_log_in_both_lists(collector: CollectorHandle) -> None:
    """An sdk-log event is authenticated and discarded, echoed nowhere."""
    response = _post(collector, [event("e-log", "sdk-log", {"log": "hi"})])
    assert response.json() == {"successes": [], "errors": []}


def test_ingestion_applies_creates_before_updates_when_batch_order_is_reversed(
    v3: CollectorHandle,
) -> None:
    """Within one batch an update listed first still lands after its create."""
    update = event(
        "e-upd", "span-update", {"id": SPAN_ID, "traceId": TRACE_ID, "output": {"final": True}}
    )
    _post(v3, [update, span_create()])
    [obs] = v3.observations()
    assert obs["output"] == {"final": True}
    assert obs["startTime"] == "2026-08-22T10:00:00.000Z"


def test_ingestion_keeps_first_start_time_when_update_arrives_before_create(
    v3: CollectorHandle,
) -> None:
    """As in Langfuse, an update sent before its create fixes the start time (envelope time)."""
    update = event(
        "e-upd", "span-update", {"id": SPAN_ID, "traceId": TRACE_ID}, ts="2026-08-22T11:00:00Z"
    )
    _post(v3, [update])
    _post(v3, [span_create()])
    [obs] = v3.observations()
    assert obs["startTime"] == "2026-08-22T11:00:00.000Z"

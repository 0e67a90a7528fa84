"""LegacyExporter over real HTTP on loopback: the batch that arrives and how a 207 is read."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import httpx
import pytest

from exporters.openapi import validate_event
from exporters.server import Answer, Received, ScriptedServer, destination_for
from exporters.trees import chat_trace, workflow_trace
from exporters.wire import check_legacy
from opstrail.exporters.base import IngestionPath, Outcome
from opstrail.exporters.legacy.exporter import INGESTION_PATH, LegacyExporter

pytestmark = pytest.mark.timeout(60)


def _multi_status(fail: dict[str, tuple[int, str, str]] | None = None, *, drop: str = "") -> Any:
    """A 207 answer: events whose body id is in ``fail`` get that error, the rest succeed."""
    fail = fail or {}

    def respond(received: Received) -> Answer:
        successes, errors = [], []
        for event in received.json()["batch"]:
            body_id = event["body"]["id"]
            if drop and body_id == drop:
                continue
            if body_id in fail:
                status, message, error = fail[body_id]
                errors.append(
                    {"id": event["id"], "status": status, "message": message, "error": error}
                )
            else:
                successes.append({"id": event["id"], "status": 201})
        return Answer(207, {"successes": successes, "errors": errors})

    return respond


def _destination(server: ScriptedServer) -> Any:
    return destination_for(server, IngestionPath.LEGACY)


def test_legacy_export_sends_a_valid_batch_with_basic_auth(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """The body is a JSON batch of schema-valid events, with Basic auth and SDK headers."""
    traces = [chat_trace(), workflow_trace(4)]
    langfuse.answer(INGESTION_PATH, _multi_status())
    result = LegacyExporter(client).export(traces, _destination(langfuse))
    assert result.outcome is Outcome.DELIVERED
    assert all(result.outcome_of(t.id) is Outcome.DELIVERED for t in traces)
    (request,) = langfuse.received(INGESTION_PATH)
    assert request.headers["content-type"] == "application/json"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
    )
    assert request.headers["x-langfuse-sdk-name"] == "opstrail"
    body = request.json()
    check_legacy(body, traces)
    for event in body["batch"]:
        validate_event(event)


def test_legacy_export_reads_a_partial_207_per_trace(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """One bad event makes only its trace REJECTED, with the server's error text."""
    good, bad = chat_trace(), workflow_trace(4)
    failing_node = bad.observations[2].id
    langfuse.answer(
        INGESTION_PATH,
        _multi_status({failing_node: (400, "Invalid request data", "startTime: Invalid datetime")}),
    )
    result = LegacyExporter(client).export([good, bad], _destination(langfuse))
    assert result.status_code == 207
    assert result.outcome_of(good.id) is Outcome.DELIVERED
    assert result.outcome_of(bad.id) is Outcome.REJECTED
    assert "Invalid datetime" in result.traces[bad.id].message
    assert result.outcome is Outcome.REJECTED


def test_legacy_export_reports_wrong_path_for_event_type_not_accepted(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A v4 server in events_only mode (207, every event 'Event type not accepted') is WRONG_PATH."""
    trace = chat_trace()
    every = {o.id: (400, "Event type not accepted", "") for o in trace.observations}
    every[trace.id] = (400, "Event type not accepted", "")
    langfuse.answer(INGESTION_PATH, _multi_status(every))
    result = LegacyExporter(client).export([trace], _destination(langfuse))
    assert result.outcome is Outcome.WRONG_PATH
    assert result.outcome_of(trace.id) is Outcome.WRONG_PATH


def test_legacy_export_retries_a_trace_with_a_per_event_500(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A per-event 500 makes that trace RETRY; a trace is delivered only if all events were."""
    a, b = chat_trace(), workflow_trace(3)
    langfuse.answer(
        INGESTION_PATH, _multi_status({a.observations[1].id: (500, "", "Internal Server Error")})
    )
    result = LegacyExporter(client).export([a, b], _destination(langfuse))
    assert result.outcome_of(a.id) is Outcome.RETRY
    assert result.outcome_of(b.id) is Outcome.DELIVERED


def test_legacy_export_retries_a_trace_whose_event_got_no_answer(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """An event missing from both lists leaves its trace undelivered (RETRY)."""
    a = chat_trace()
    langfuse.answer(INGESTION_PATH, _multi_status(drop=a.observations[3].id))
    result = LegacyExporter(client).export([a], _destination(langfuse))
    assert result.outcome_of(a.id) is Outcome.RETRY


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (400, {"message": "Invalid request data"}, Outcome.REJECTED),
        (
            401,
            {"error": "UnauthorizedError", "message": "Invalid public key"},
            Outcome.UNAUTHORIZED,
        ),
        (403, {"error": "ForbiddenError", "message": "Ingestion suspended"}, Outcome.FORBIDDEN),
        (413, b"Body exceeded 4.5mb limit", Outcome.TOO_LARGE),
        (500, {"message": "Invalid request data", "errors": ["upload failed"]}, Outcome.RETRY),
        (207, b"not json", Outcome.RETRY),
    ],
)
def test_legacy_export_maps_whole_request_statuses(
    langfuse: ScriptedServer, client: httpx.Client, status: int, body: object, outcome: Outcome
) -> None:
    """Whole-request answers follow contract §4.9; an unreadable 207 is retried."""
    langfuse.answer(INGESTION_PATH, Answer(status, body))
    result = LegacyExporter(client).export([chat_trace()], _destination(langfuse))
    assert result.outcome is outcome
    assert result.outcome_of(chat_trace().id) is outcome


def test_legacy_export_rate_limit_keeps_retry_after(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """429 is RATE_LIMITED with Retry-After."""
    langfuse.answer(
        INGESTION_PATH, Answer(429, {"message": "Rate limit exceeded"}, {"Retry-After": "12"})
    )
    result = LegacyExporter(client).export([chat_trace()], _destination(langfuse))
    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after == 12.0


def test_legacy_export_cuts_an_event_over_1mb(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """An observation whose event would exceed 1 MB is sent cut, with a marker, under 1 MB."""
    trace = chat_trace()
    big = replace(trace.observations[4], input={"messages": ["m" * 700_000, "n" * 700_000]})
    trace = replace(trace, observations=(*trace.observations[:4], big, *trace.observations[5:]))
    langfuse.answer(INGESTION_PATH, _multi_status())
    result = LegacyExporter(client).export([trace], _destination(langfuse))
    assert result.outcome is Outcome.DELIVERED
    events = langfuse.received(INGESTION_PATH)[0].json()["batch"]
    llm = next(e for e in events if e["body"].get("name") == "llm")
    assert len(httpx.Request("POST", "http://x", json=llm).content) <= 1_000_000
    assert "…[truncated " in llm["body"]["input"]
    assert llm["body"]["metadata"]["opstrail_truncated"] is True


def test_legacy_export_splits_batches_over_the_cap(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """Traces beyond the request cap go in further requests, each under it."""
    traces = [workflow_trace(20, run_id=f"run-{n}") for n in range(5)]
    langfuse.always(INGESTION_PATH, _multi_status())
    cap = 80_000
    result = LegacyExporter(client, max_request_bytes=cap).export(traces, _destination(langfuse))
    requests = langfuse.received(INGESTION_PATH)
    assert len(requests) > 1
    assert all(len(r.body) <= cap for r in requests)
    assert result.outcome is Outcome.DELIVERED
    assert sum(len(r.json()["batch"]) for r in requests) == sum(
        len(t.observations) + 1 for t in traces
    )


def test_legacy_export_goes_on_after_a_per_event_500(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A per-event 500 in the first of several requests does not stop the later ones."""
    traces = [workflow_trace(20, run_id=f"run-{n}") for n in range(5)]
    langfuse.answer(
        INGESTION_PATH, _multi_status({traces[0].observations[1].id: (500, "", "boom")})
    )
    langfuse.always(INGESTION_PATH, _multi_status())
    result = LegacyExporter(client, max_request_bytes=80_000).export(traces, _destination(langfuse))
    assert len(langfuse.received(INGESTION_PATH)) > 1
    assert result.outcome_of(traces[0].id) is Outcome.RETRY
    assert all(result.outcome_of(t.id) is Outcome.DELIVERED for t in traces[1:])


def test_legacy_export_stops_after_event_type_not_accepted(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """When the first request says 'Event type not accepted', the rest is not sent."""
    traces = [workflow_trace(20, run_id=f"run-{n}") for n in range(5)]

    def refuse_all(received: Received) -> Answer:
        errors = [
            {"id": e["id"], "status": 400, "message": "Event type not accepted"}
            for e in received.json()["batch"]
        ]
        return Answer(207, {"successes": [], "errors": errors})

    langfuse.always(INGESTION_PATH, refuse_all)
    result = LegacyExporter(client, max_request_bytes=80_000).export(traces, _destination(langfuse))
    assert len(langfuse.received(INGESTION_PATH)) == 1
    assert result.outcome is Outcome.WRONG_PATH
    assert all(result.outcome_of(t.id) is Outcome.WRONG_PATH for t in traces)

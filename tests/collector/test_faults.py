"""Fault injection: error rates, fixed failures, 429 Retry-After, partial 207s, latency,
down-for-N (connection refused), accept-only, and the admin endpoint."""

from __future__ import annotations

import time

import httpx
import pytest

from opstrail.collector.faults import FaultConfig
from opstrail.collector.testing import CollectorHandle, running_collector

from .legacy_events import generation_create, span_create, trace_create
from .otlp_requests import chat_spans, export_request

OTEL = "/api/public/otel/v1/traces"
HEADERS = {"content-type": "application/x-protobuf"}


def _send(client: httpx.Client) -> httpx.Response:
    return client.post(
        OTEL, content=export_request(chat_spans()).SerializeToString(), headers=HEADERS
    )


def test_faults_fail_a_share_of_writes_when_error_rate_is_set(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """With a seeded 30% rate of 503, some writes fail and the others are stored."""
    collector.set_faults(error_rate=0.3, error_status=503, seed=7)
    statuses = [_send(client).status_code for _ in range(30)]
    assert set(statuses) == {200, 503}
    assert statuses.count(503) < 20
    assert client.get("/api/public/health").status_code == 200  # health is not a target
    assert collector.observations()[0]["copies"] == statuses.count(200)


def test_faults_answer_429_with_retry_after_when_fail_next_is_429(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """The next N writes get 429 with Retry-After and Langfuse's body; then writes succeed."""
    collector.set_faults(fail_next=2, fail_status=429, retry_after_seconds=3)
    first, second, third = (_send(client) for _ in range(3))
    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.json()["code"] == "rate_limited"
    assert third.status_code == 200
    assert len(collector.traces()) == 1
    assert [r.injected for r in collector.request_log()] == [True, True, False]


def test_faults_fail_some_legacy_events_when_partial_error_rate_is_set() -> None:
    """A partial error rate answers per-event 500s inside the 207 and stores only the rest."""
    faults = FaultConfig(partial_error_rate=0.5, seed=3)
    with running_collector(langfuse_version="3.225.4", faults=faults) as collector:
        batch = [trace_create(), span_create(), generation_create()] * 4
        for i, item in enumerate(batch):
            item["id"] = f"e{i}"
        body = httpx.post(
            collector.url + "/api/public/ingestion",
            json={"batch": batch},
            auth=("pk-lf-test", "sk-lf-test"),
        ).json()
        assert body["errors"] and body["successes"]
        assert {e["status"] for e in body["errors"]} == {500}
        assert len(body["errors"]) + len(body["successes"]) == len(batch)


def test_faults_refuse_connections_when_down_for_seconds(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Down-for-N closes the listener (connection refused), then listens again."""
    assert _send(client).status_code == 200
    collector.set_faults(down_for_seconds=0.6)
    with pytest.raises(httpx.ConnectError):
        httpx.get(collector.url + "/api/public/health", timeout=2)
    collector.wait_for(lambda: _health_ok(collector.url), timeout=10)
    assert _send(client).status_code == 200


def _health_ok(url: str) -> bool:
    try:
        return httpx.get(url + "/api/public/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_faults_delay_answer_when_latency_is_set(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Injected latency delays the answer by at least that long (a lower bound, not a perf test)."""
    collector.set_faults(latency_seconds=0.3)
    started = time.monotonic()
    assert _send(client).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_faults_store_nothing_when_accept_only(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Accept-only authenticates and counts spans but stores nothing."""
    collector.set_faults(accept_only=True)
    assert _send(client).status_code == 200
    assert collector.traces() == []
    assert collector.accepted_items() == {"otel": 2}
    bad = httpx.post(collector.url + OTEL, content=b"", headers=HEADERS, auth=("x", "y"))
    assert bad.status_code == 401


def test_faults_admin_endpoint_sets_shows_and_clears_faults(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """POST /_collector/faults sets faults, GET shows them, DELETE clears them."""
    response = client.post("/_collector/faults", json={"fail_next": 1, "fail_status": 500})
    assert response.status_code == 200
    assert client.get("/_collector/faults").json()["fail_status"] == 500
    assert _send(client).status_code == 500
    client.post("/_collector/faults", json={"fail_next": 5})
    client.delete("/_collector/faults")
    assert _send(client).status_code == 200


@pytest.mark.parametrize("body", [{"nope": 1}, {"error_rate": 2}, {"fail_status": 200}, [1]])
def test_faults_admin_endpoint_refuses_bad_settings(client: httpx.Client, body: object) -> None:
    """Unknown keys and out-of-range values are 400s."""
    assert client.post("/_collector/faults", json=body).status_code == 400


def test_faults_admin_endpoint_needs_keys(collector: CollectorHandle) -> None:
    """The admin endpoint refuses callers without valid keys."""
    response = httpx.post(collector.url + "/_collector/faults", json={"fail_next": 1})
    assert response.status_code == 401


def test_faults_answer_custom_message_when_simulating_usage_suspension(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """A 403 with Langfuse Cloud's suspension text can be injected for every write."""
    message = "Ingestion suspended: Usage threshold exceeded. Please upgrade your plan."
    collector.set_faults(error_rate=1.0, error_status=403, message=message)
    response = _send(client)
    assert response.status_code == 403
    assert response.json()["message"] == message
    assert collector.traces() == []


def test_faults_admin_endpoint_takes_collector_down_when_down_for_seconds_is_posted(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Posting down_for_seconds to the admin endpoint refuses new connections for that long."""
    response = client.post("/_collector/faults", json={"down_for_seconds": 0.6})
    assert response.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(collector.url + "/api/public/health", timeout=2)
    collector.wait_for(lambda: _health_ok(collector.url), timeout=10)

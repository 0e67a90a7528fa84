"""Langfuse-like read API over what the collector received."""

from __future__ import annotations

import httpx

from opstrail.collector.testing import CollectorHandle

from .otlp_requests import LLM_ID, ROOT_ID, TRACE_ID, chat_spans, export_request

HEADERS = {"content-type": "application/x-protobuf"}


def _send(client: httpx.Client) -> None:
    body = export_request(chat_spans()).SerializeToString()
    assert (
        client.post("/api/public/otel/v1/traces", content=body, headers=HEADERS).status_code == 200
    )


def test_read_trace_returns_observations_and_scores(client: httpx.Client) -> None:
    """GET /traces/{id} answers the trace with observations and its scores."""
    _send(client)
    client.post(
        "/api/public/scores", json={"id": "s1", "traceId": TRACE_ID, "name": "f", "value": 1}
    )
    response = client.get(f"/api/public/traces/{TRACE_ID}")
    assert response.status_code == 200
    trace = response.json()
    assert [o["id"] for o in trace["observations"]] == [ROOT_ID, LLM_ID]
    assert [s["id"] for s in trace["scores"]] == ["s1"]
    assert trace["totalCost"] == 0.00054
    assert trace["latency"] == 1.5


def test_read_trace_answers_404_when_trace_is_unknown(client: httpx.Client) -> None:
    """An unknown trace id is a 404."""
    assert client.get("/api/public/traces/" + "0" * 32).status_code == 404


def test_read_traces_lists_and_filters_by_user(client: httpx.Client) -> None:
    """GET /traces lists traces with paging meta and filters on userId."""
    _send(client)
    listed = client.get("/api/public/traces").json()
    assert [t["id"] for t in listed["data"]] == [TRACE_ID]
    assert listed["meta"]["totalItems"] == 1
    assert client.get("/api/public/traces", params={"userId": "nobody"}).json()["data"] == []


def test_read_observations_filters_by_trace_id(client: httpx.Client) -> None:
    """GET /observations?traceId= answers that trace's observations."""
    _send(client)
    data = client.get("/api/public/observations", params={"traceId": TRACE_ID}).json()["data"]
    assert {o["id"] for o in data} == {ROOT_ID, LLM_ID}
    assert client.get("/api/public/observations", params={"traceId": "f" * 32}).json()["data"] == []


def test_read_hides_traces_when_caller_is_another_project(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """A project only reads its own traces."""
    _send(client)
    other = httpx.get(
        f"{collector.url}/api/public/traces/{TRACE_ID}", auth=("pk-lf-other", "sk-lf-other")
    )
    assert other.status_code == 404

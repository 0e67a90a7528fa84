"""OTLP/HTTP receiver: round trips in protobuf+gzip and JSON, and every refusal."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from opstrail.collector.testing import CollectorHandle, running_collector

from .otlp_requests import (
    LLM_ID,
    ROOT_ID,
    TRACE_ID,
    TRACE_NAME,
    SpanSpec,
    chat_spans,
    export_request,
    to_otlp_json,
)

PATH = "/api/public/otel/v1/traces"
PROTO_HEADERS = {"content-type": "application/x-protobuf", "x-langfuse-ingestion-version": "4"}


def _post_proto(client: httpx.Client, spans: list[SpanSpec], **kwargs: object) -> httpx.Response:
    body = export_request(spans, **kwargs).SerializeToString()  # type: ignore[arg-type]
    return client.post(PATH, content=body, headers=PROTO_HEADERS)


def test_otlp_stores_trace_and_observations_when_protobuf_is_gzipped(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """A gzipped protobuf export is decoded into a trace and its observations, fully mapped."""
    body = gzip.compress(export_request(chat_spans()).SerializeToString())
    response = client.post(
        PATH, content=body, headers={**PROTO_HEADERS, "content-encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.json() == {}
    [trace] = collector.traces()
    assert trace["id"] == TRACE_ID
    assert trace["name"] == TRACE_NAME
    assert trace["userId"] == "end-user-42"
    assert trace["sessionId"] == "conv-1"
    assert trace["tags"] == ["chat", "message"]
    assert trace["metadata"] == {"app_id": "app-1"}
    assert trace["environment"] == "production"
    assert trace["timestamp"] == "2026-08-22T10:00:00.000Z"
    assert trace["input"] == {"query": "hi"}
    assert trace["output"] == "Hello!"
    assert trace["shallow"] is False
    root, llm = trace["observations"]
    assert (root["id"], root["type"], root["parentObservationId"]) == (ROOT_ID, "CHAIN", None)
    assert (llm["id"], llm["type"], llm["parentObservationId"]) == (LLM_ID, "GENERATION", ROOT_ID)
    assert llm["model"] == "gpt-4o-mini"
    assert llm["modelParameters"] == {"temperature": 0.2}
    assert llm["usageDetails"] == {"input": 812, "output": 64, "total": 876}
    assert llm["costDetails"] == {"total": 0.00054}
    assert llm["completionStartTime"] == "2026-08-22T10:00:00.420Z"
    assert llm["startTime"] == "2026-08-22T10:00:00.100Z"
    assert llm["endTime"] == "2026-08-22T10:00:01.400Z"
    assert llm["level"] == "DEFAULT"
    assert llm["attributes"]["custom.flag"] is True
    assert llm["metadata"]["attributes"] == {"custom.flag": "true"}
    assert llm["metadata"]["resourceAttributes"] == {"service.name": "opstrail-tests"}
    assert llm["copies"] == 1


def test_otlp_json_yields_same_records_as_protobuf_when_ids_are_hex() -> None:
    """OTLP/JSON with hex ids and list attributes maps exactly like the protobuf encoding."""
    request = export_request(chat_spans())
    results = []
    for content_type, body in (
        ("application/x-protobuf", request.SerializeToString()),
        ("application/json", to_otlp_json(request)),
    ):
        with running_collector() as collector:
            response = httpx.post(
                collector.url + PATH,
                content=body,
                auth=("pk-lf-test", "sk-lf-test"),
                headers={"content-type": content_type},
            )
            assert response.status_code == 200, response.text
            results.append(collector.traces())
    assert results[0] == results[1]
    assert results[0][0]["observations"][1]["usageDetails"]["total"] == 876


def test_otlp_refuses_json_when_attributes_are_an_object(client: httpx.Client) -> None:
    """A {key: value} attributes object fails the whole request with 400."""
    document = json.loads(to_otlp_json(export_request(chat_spans())))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = {"a": "b"}
    response = client.post(PATH, json=document)
    assert response.status_code == 400
    assert "error" in response.json()


def test_otlp_refuses_when_content_type_is_not_otlp(client: httpx.Client) -> None:
    """Only protobuf and JSON are accepted."""
    response = client.post(PATH, content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid content type"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trace_id", "00000000000000000000000000000000"),
        ("trace_id", "3f2b1c9e8d7a4e6f"),
        ("span_id", "0000000000000000"),
        ("span_id", "a1b2c3"),
        ("parent_id", "0000000000000000"),
        ("parent_id", "a1b2c3d4e5f6071899"),
    ],
)
def test_otlp_refuses_whole_request_when_an_id_is_invalid(
    collector: CollectorHandle, client: httpx.Client, field: str, value: str
) -> None:
    """One bad trace/span/parent id rejects the whole export and stores nothing."""
    good, bad = chat_spans()
    setattr(bad, field, value)
    response = _post_proto(client, [good, bad])
    assert response.status_code == 400
    assert response.json()["error"]
    assert collector.traces() == []


def test_otlp_refuses_when_span_id_is_missing(client: httpx.Client) -> None:
    """A span without a span id is refused (JSON lets us omit it)."""
    document = json.loads(to_otlp_json(export_request(chat_spans())))
    del document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"]
    response = client.post(PATH, json=document)
    assert response.status_code == 400
    assert "spanId" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(b"\xff\xff\xff not protobuf", None), (b"not gzip at all", "gzip")],
)
def test_otlp_refuses_when_body_is_undecodable(
    client: httpx.Client, body: bytes, encoding: str | None
) -> None:
    """Garbage protobuf and broken gzip get a 400 with an error text."""
    headers = dict(PROTO_HEADERS)
    if encoding:
        headers["content-encoding"] = encoding
    response = client.post(PATH, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("version", ["5", "abc"])
def test_otlp_refuses_when_ingestion_version_is_unsupported(
    client: httpx.Client, version: str
) -> None:
    """x-langfuse-ingestion-version above 4 or non-numeric is a 400."""
    body = export_request(chat_spans()).SerializeToString()
    response = client.post(
        PATH,
        content=body,
        headers={"content-type": "application/x-protobuf", "x-langfuse-ingestion-version": version},
    )
    assert response.status_code == 400


def test_otlp_answers_empty_object_when_resource_spans_are_empty(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """An empty export is authenticated and answered 200 {} without storing anything."""
    response = client.post(PATH, content=b"", headers=PROTO_HEADERS)
    assert response.status_code == 200
    assert response.json() == {}
    assert collector.traces() == []


def test_otlp_answers_413_when_body_exceeds_limit() -> None:
    """A body above the configured OTLP limit is refused with 413."""
    with running_collector(otlp_max_bytes=1000) as collector:
        spans = chat_spans()
        spans[0].attributes["langfuse.observation.input"] = "x" * 2000
        response = httpx.post(
            collector.url + PATH,
            content=export_request(spans).SerializeToString(),
            auth=("pk-lf-test", "sk-lf-test"),
            headers=PROTO_HEADERS,
        )
        assert response.status_code == 413
        assert collector.traces() == []


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        (("pk-lf-test", "wrong"), 401),
        (("pk-lf-org", "sk-lf-org"), 403),
        (("pk-lf-none", "sk-lf-none"), 403),
    ],
)
def test_otlp_refuses_when_keys_are_not_project_keys(
    collector: CollectorHandle, auth: tuple[str, str], status: int
) -> None:
    """Wrong keys get 401; organization and project-less keys get 403."""
    response = httpx.post(
        collector.url + PATH,
        content=export_request(chat_spans()).SerializeToString(),
        auth=auth,
        headers=PROTO_HEADERS,
    )
    assert response.status_code == status
    assert collector.traces() == []


def test_otlp_answers_404_when_imitating_v2() -> None:
    """A v2 server has no OTLP endpoint."""
    with running_collector(langfuse_version="2.95.12") as collector:
        response = httpx.post(
            collector.url + PATH,
            content=export_request(chat_spans()).SerializeToString(),
            auth=("pk-lf-test", "sk-lf-test"),
            headers=PROTO_HEADERS,
        )
    assert response.status_code == 404


def test_otlp_counts_identical_duplicates_when_request_is_resent(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Re-sending the same spans stores duplicates (as Langfuse v4) reported as identical."""
    assert _post_proto(client, chat_spans()).status_code == 200
    assert _post_proto(client, chat_spans()).status_code == 200
    duplicates = collector.duplicates()
    assert {(d.id, d.copies, d.identical) for d in duplicates} == {
        (ROOT_ID, 2, True),
        (LLM_ID, 2, True),
    }


def test_otlp_reports_differing_duplicates_when_resent_span_changed(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """A re-sent span with other content is a duplicate marked as not identical."""
    _post_proto(client, chat_spans())
    changed = chat_spans()
    changed[1].attributes["langfuse.observation.output"] = '"other"'
    _post_proto(client, changed[1:])
    [duplicate] = collector.duplicates()
    assert (duplicate.id, duplicate.copies, duplicate.identical) == (LLM_ID, 2, False)


def test_otlp_marks_error_level_and_shallow_trace_when_root_is_absent(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Status code 2 gives level ERROR; a trace without its root span stays shallow."""
    child = SpanSpec(LLM_ID, "tool", parent_id=ROOT_ID, status_code=2, status_message="boom")
    assert _post_proto(client, [child]).status_code == 200
    [trace] = collector.traces()
    assert trace["shallow"] is True
    assert trace["name"] is None
    [obs] = collector.observations(TRACE_ID)
    assert (obs["level"], obs["statusMessage"], obs["type"]) == ("ERROR", "boom", "SPAN")


def test_otlp_infers_generation_when_type_is_unknown_but_model_is_set(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """An unknown observation type falls back to generation when a model is present."""
    span = SpanSpec(
        ROOT_ID,
        "x",
        attributes={"langfuse.observation.type": "weird", "langfuse.observation.model.name": "m"},
    )
    _post_proto(client, [span])
    assert collector.observations()[0]["type"] == "GENERATION"


def test_otlp_records_langfuse_headers_when_request_is_logged(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """The request log keeps the ingestion version and SDK headers for assertions."""
    client.post(
        PATH,
        content=export_request(chat_spans()).SerializeToString(),
        headers={**PROTO_HEADERS, "x-langfuse-sdk-name": "opstrail"},
    )
    [record] = collector.request_log()
    assert record.endpoint == "otel"
    assert record.headers["x-langfuse-ingestion-version"] == "4"
    assert record.headers["x-langfuse-sdk-name"] == "opstrail"
    assert (record.status, record.items, record.public_key) == (200, 2, "pk-lf-test")


def test_otlp_keeps_json_ids_as_sent_when_they_are_uppercase(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Like Langfuse, OTLP/JSON ids are used as sent, so uppercase ids stay visible as a bug."""
    document = json.loads(to_otlp_json(export_request(chat_spans()[:1])))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"] = TRACE_ID.upper()
    assert client.post(PATH, json=document).status_code == 200
    assert [t["id"] for t in collector.traces()] == [TRACE_ID.upper()]


CONTRACT_EXAMPLE = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "acme-llm-runtime"}},
                    {"key": "langfuse.environment", "value": {"stringValue": "production"}},
                ]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "acme-llm-runtime", "version": "1.0.0"},
                    "spans": [
                        {
                            "traceId": TRACE_ID,
                            "spanId": ROOT_ID,
                            "name": "message",
                            "kind": 1,
                            "startTimeUnixNano": "1787392800000000000",
                            "endTimeUnixNano": "1787392801500000000",
                            "attributes": [
                                {
                                    "key": "langfuse.observation.type",
                                    "value": {"stringValue": "chain"},
                                },
                                {
                                    "key": "langfuse.trace.name",
                                    "value": {"stringValue": TRACE_NAME},
                                },
                                {"key": "user.id", "value": {"stringValue": "end-user-42"}},
                                {
                                    "key": "langfuse.trace.tags",
                                    "value": {
                                        "arrayValue": {
                                            "values": [
                                                {"stringValue": "message"},
                                                {"stringValue": "chat"},
                                            ]
                                        }
                                    },
                                },
                                {
                                    "key": "langfuse.observation.input",
                                    "value": {"stringValue": '{"query":"hi"}'},
                                },
                            ],
                            "status": {},
                        },
                        {
                            "traceId": TRACE_ID,
                            "spanId": LLM_ID,
                            "parentSpanId": ROOT_ID,
                            "name": "llm",
                            "kind": 1,
                            "startTimeUnixNano": "1787392800100000000",
                            "endTimeUnixNano": "1787392801400000000",
                            "attributes": [
                                {
                                    "key": "langfuse.observation.type",
                                    "value": {"stringValue": "generation"},
                                },
                                {
                                    "key": "langfuse.observation.usage_details",
                                    "value": {
                                        "stringValue": '{"input":812,"output":64,"total":876}'
                                    },
                                },
                                {
                                    "key": "langfuse.observation.cost_details",
                                    "value": {"stringValue": '{"total":0.00054}'},
                                },
                                {"key": "retries", "value": {"intValue": "2"}},
                            ],
                            "status": {"code": 2, "message": "late"},
                        },
                    ],
                }
            ],
        }
    ]
}


def test_otlp_maps_contract_example_when_sent_as_literal_json(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """The contract's own OTLP/JSON example (string int64s, arrayValue tags) maps as documented."""
    response = client.post(
        PATH, json=CONTRACT_EXAMPLE, headers={"x-langfuse-ingestion-version": "4"}
    )
    assert response.status_code == 200
    trace = collector.trace(TRACE_ID)
    assert trace is not None
    assert (trace["name"], trace["environment"], trace["tags"]) == (
        TRACE_NAME,
        "production",
        ["chat", "message"],
    )
    llm = trace["observations"][1]
    assert llm["usageDetails"] == {"input": 812, "output": 64, "total": 876}
    assert llm["attributes"]["retries"] == 2
    assert (llm["level"], llm["statusMessage"]) == ("ERROR", "late")
    assert llm["metadata"]["scope"]["name"] == "acme-llm-runtime"

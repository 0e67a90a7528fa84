"""The legacy serializer: every event valid against Langfuse's OpenAPI file, nothing lost."""

from __future__ import annotations

import json

import jsonschema
import pytest

from exporters.openapi import validate_event, validate_schema
from exporters.trees import chat_trace, sample_traces, title_child_trace, workflow_trace
from exporters.wire import check_legacy
from opstrail import ids
from opstrail.exporters.legacy.encode import encode_batch, encode_events


def test_encode_batch_events_match_the_openapi_schema() -> None:
    """Every event of every sample tree is a valid IngestionEvent with no key Langfuse strips."""
    body = encode_batch(sample_traces())
    assert body["batch"]
    for event in body["batch"]:
        validate_event(event)
        if "usage" in event["body"]:
            validate_schema(event["body"]["usage"], "Usage")


def test_encode_batch_carries_every_field() -> None:
    """Reading the batch back gives every field of the trees (apart from documented moves)."""
    traces = sample_traces()
    check_legacy(encode_batch(traces), traces)


def test_encode_batch_uses_only_the_v2_event_types() -> None:
    """Only trace-, span-, generation- and event-create; intended types go to metadata."""
    events = encode_batch([chat_trace()])["batch"]
    by_name = {e["body"].get("name"): e for e in events if e["type"] != "trace-create"}
    assert by_name["moderation"]["type"] == "span-create"
    assert by_name["moderation"]["body"]["metadata"]["observation_type"] == "guardrail"
    assert by_name["dataset_retrieval"]["body"]["metadata"]["observation_type"] == "retriever"
    assert by_name["current_time"]["type"] == "span-create"
    assert by_name["current_time"]["body"]["metadata"]["observation_type"] == "tool"
    assert by_name["message"]["type"] == "span-create"
    assert by_name["message"]["body"]["metadata"]["observation_type"] == "chain"
    assert by_name["agent"]["type"] == "generation-create"
    assert by_name["agent"]["body"]["metadata"]["observation_type"] == "agent"
    assert by_name["marker"]["type"] == "event-create"
    assert by_name["llm"]["body"]["usage"] == {
        "input": 800,
        "output": 64,
        "total": 876,
        "unit": "TOKENS",
        "inputCost": 0.00041,
        "outputCost": 0.00013,
        "totalCost": 0.00054,
    }
    assert by_name["llm"]["body"]["costDetails"]["total"] == 0.00054
    assert by_name["llm"]["body"]["metadata"]["environment"] == "production"


def test_encode_batch_has_deterministic_event_ids_and_times() -> None:
    """The same trees give byte-identical batches; event ids follow ids.event_id."""
    first = json.dumps(encode_batch([chat_trace(), workflow_trace(4)]))
    second = json.dumps(encode_batch([chat_trace(), workflow_trace(4)]))
    assert first == second
    event = encode_batch([chat_trace()])["batch"][0]
    assert event["type"] == "trace-create"
    assert event["id"] == ids.event_id(chat_trace().id, "trace-create")


def test_encode_batch_skips_trace_create_when_root_was_sent_before() -> None:
    """A trace holding only a new child (external parent) sends no trace-create."""
    trace = title_child_trace()
    events = encode_batch([trace])["batch"]
    assert [e["type"] for e in events] == ["generation-create"]
    assert events[0]["body"]["traceId"] == trace.id
    assert events[0]["body"]["parentObservationId"] in trace.external_parent_ids


def test_encode_events_maps_each_event_to_its_trace() -> None:
    """Each event id is mapped to the trace it belongs to, for reading a 207."""
    a, b = chat_trace(), workflow_trace(3)
    encoded = encode_events([a, b])
    assert set(encoded.trace_of_event.values()) == {a.id, b.id}
    assert len(encoded.trace_of_event) == len(encoded.body["batch"])


@pytest.mark.parametrize("bad", [{"startTime": "2026-08-22T10:00:00"}, {"level": "error"}])
def test_schema_check_refuses_a_broken_event(bad: dict[str, str]) -> None:
    """The schema check itself catches a naive time and a lower-case level."""
    event = encode_batch([chat_trace()])["batch"][1]
    event["body"].update(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate_event(event)


def test_check_legacy_notices_a_lost_field() -> None:
    """The round-trip checker fails when an observation event loses its usage."""
    trace = chat_trace()
    body = encode_batch([trace])
    for event in body["batch"]:
        event["body"].pop("usageDetails", None)
    with pytest.raises(AssertionError):
        check_legacy(body, [trace])

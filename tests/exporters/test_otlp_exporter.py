"""OtlpExporter over real HTTP on loopback: what arrives, and how each answer is read."""

from __future__ import annotations

import base64
import gzip as stdlib_gzip
import socket
from dataclasses import replace
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.server import Answer, ScriptedServer, destination_for
from exporters.trees import chat_trace, workflow_trace
from exporters.wire import attributes, check_otlp
from opstrail import __version__
from opstrail.exporters.base import Destination, Outcome
from opstrail.exporters.otlp.exporter import OTLP_PATH, OtlpExporter, gzip
from opstrail.tracing.tree import Trace

pytestmark = pytest.mark.timeout(60)


def test_otlp_export_sends_gzipped_protobuf_with_auth_and_headers(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """The request is gzip + protobuf, Basic auth, ingestion version 4, opstrail SDK headers."""
    traces = [chat_trace(), workflow_trace(5)]
    result = OtlpExporter(client).export(traces, destination_for(langfuse))
    assert result.outcome is Outcome.DELIVERED
    (request,) = langfuse.received(OTLP_PATH)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-langfuse-ingestion-version"] == "4"
    assert request.headers["x-langfuse-sdk-name"] == "opstrail"
    assert request.headers["x-langfuse-sdk-version"] == __version__
    expected = base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    check_otlp(ExportTraceServiceRequest.FromString(request.body), traces)


def test_otlp_export_keeps_the_host_sub_path(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A host behind a path prefix gets the API path appended after the prefix."""
    destination = replace(destination_for(langfuse), host=f"{langfuse.url}/langfuse")
    OtlpExporter(client).export([chat_trace()], destination)
    assert [r.path for r in langfuse.requests] == [f"/langfuse{OTLP_PATH}"]


@pytest.mark.parametrize(
    ("status", "body", "outcome", "words"),
    [
        (200, {}, Outcome.DELIVERED, ""),
        (400, {"error": "bad span id"}, Outcome.REJECTED, "bad span id"),
        (401, {"message": "Invalid credentials"}, Outcome.UNAUTHORIZED, "region"),
        (
            403,
            {"message": "Ingestion suspended: Usage threshold exceeded."},
            Outcome.FORBIDDEN,
            "suspended",
        ),
        (
            403,
            {"message": "Project ID not found for API token. Are you using an organization key?"},
            Outcome.FORBIDDEN,
            "organization keys",
        ),
        (404, b"<html>not found</html>", Outcome.WRONG_PATH, "3.22"),
        (405, b"", Outcome.WRONG_PATH, "legacy"),
        (408, b"", Outcome.RETRY, "408"),
        (413, b"too big", Outcome.TOO_LARGE, "too large"),
        (500, {"message": "boom"}, Outcome.RETRY, "boom"),
        (503, b"", Outcome.RETRY, "503"),
    ],
)
def test_otlp_export_maps_each_status_to_an_outcome(
    langfuse: ScriptedServer,
    client: httpx.Client,
    status: int,
    body: object,
    outcome: Outcome,
    words: str,
) -> None:
    """Each whole-request status becomes the outcome of contract §3.2, with a plain message."""
    langfuse.answer(OTLP_PATH, Answer(status, body))
    result = OtlpExporter(client).export([chat_trace()], destination_for(langfuse))
    assert result.outcome is outcome
    assert result.status_code == status
    assert words in result.message


def test_otlp_export_reads_retry_after_on_429(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A 429 is RATE_LIMITED with the Retry-After seconds."""
    langfuse.answer(
        OTLP_PATH,
        Answer(
            429, {"message": "Rate limit exceeded", "code": "rate_limited"}, {"Retry-After": "7"}
        ),
    )
    result = OtlpExporter(client).export([chat_trace()], destination_for(langfuse))
    assert result.outcome is Outcome.RATE_LIMITED
    assert result.retry_after == 7.0


def test_otlp_export_returns_retry_on_timeout(langfuse: ScriptedServer) -> None:
    """A server slower than the timeout gives RETRY, never an exception."""
    langfuse.answer(OTLP_PATH, Answer(200, {}, delay=2.0))
    with httpx.Client() as client:
        result = OtlpExporter(client, timeout=0.3).export([chat_trace()], destination_for(langfuse))
    assert result.outcome is Outcome.RETRY
    assert "timed out" in result.message


def test_otlp_export_returns_retry_when_nothing_listens() -> None:
    """A refused connection gives RETRY, never an exception."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    destination = Destination(host=f"http://127.0.0.1:{port}", public_key="pk", secret_key="sk")
    exporter = OtlpExporter(timeout=2.0)
    try:
        result = exporter.export([chat_trace()], destination)
    finally:
        exporter.close()
    assert result.outcome is Outcome.RETRY
    assert "could not reach" in result.message


def test_otlp_export_splits_a_batch_over_the_cap(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """Traces that do not fit one request go in several, each under the cap, all delivered."""
    traces = [workflow_trace(20, run_id=f"run-{n}") for n in range(6)]
    cap = 60_000
    result = OtlpExporter(client, max_request_bytes=cap).export(traces, destination_for(langfuse))
    requests = langfuse.received(OTLP_PATH)
    assert len(requests) > 1
    assert all(len(r.body) <= cap for r in requests)
    assert result.outcome is Outcome.DELIVERED
    assert {t.id for t in traces} == set(result.traces)
    sent = [ExportTraceServiceRequest.FromString(r.body) for r in requests]
    span_count = sum(len(s.resource_spans[0].scope_spans[0].spans) for s in sent)
    assert span_count == sum(len(t.observations) for t in traces)


def test_otlp_export_stops_after_unauthorized(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """When the first request of a split batch is 401, the rest is not sent and reads 401."""
    traces = [workflow_trace(20, run_id=f"run-{n}") for n in range(6)]
    langfuse.answer(OTLP_PATH, Answer(401, {"message": "bad keys"}))
    result = OtlpExporter(client, max_request_bytes=60_000).export(
        traces, destination_for(langfuse)
    )
    assert len(langfuse.received(OTLP_PATH)) == 1
    assert result.outcome is Outcome.UNAUTHORIZED
    assert all(result.outcome_of(t.id) is Outcome.UNAUTHORIZED for t in traces)


def _chat_trace_with_big_output() -> Trace:
    """A chat trace whose llm output alone is 300 KB."""
    trace = chat_trace()
    big = replace(trace.observations[4], output="z" * 300_000)
    return replace(trace, observations=(*trace.observations[:4], big, *trace.observations[5:]))


def _llm_attributes(body: bytes) -> dict[str, Any]:
    """The attributes of the span named ``llm`` in a request body."""
    spans = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans
    return next(attributes(s) for s in spans if s.name == "llm")


def test_otlp_export_truncates_a_trace_over_the_cap(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A single trace over the cap is sent with its largest field cut and marked."""
    trace = _chat_trace_with_big_output()
    cap = 100_000
    result = OtlpExporter(client, max_request_bytes=cap).export([trace], destination_for(langfuse))
    assert result.outcome is Outcome.DELIVERED
    (request,) = langfuse.received(OTLP_PATH)
    assert len(request.body) <= cap
    llm = _llm_attributes(request.body)
    assert "…[truncated " in llm["langfuse.observation.output"]
    assert llm["langfuse.observation.metadata.opstrail_truncated"] is True


def test_otlp_export_of_nothing_sends_nothing(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """An empty export is delivered without a request."""
    assert OtlpExporter(client).export([], destination_for(langfuse)).outcome is Outcome.DELIVERED
    assert langfuse.requests == []


def test_otlp_export_reports_too_large_when_truncation_cannot_help(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A trace that cannot fit even with every big field cut is TOO_LARGE and not sent."""
    trace = chat_trace()
    result = OtlpExporter(client, max_request_bytes=2_000).export(
        [trace], destination_for(langfuse)
    )
    assert result.outcome is Outcome.TOO_LARGE
    assert result.outcome_of(trace.id) is Outcome.TOO_LARGE
    assert langfuse.requests == []


def test_otlp_export_keeps_retry_after_on_503(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A 503 with Retry-After is RETRY and carries the delay."""
    langfuse.answer(OTLP_PATH, Answer(503, {"message": "busy"}, {"Retry-After": "5"}))
    result = OtlpExporter(client).export([chat_trace()], destination_for(langfuse))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 5.0)


def test_otlp_export_never_raises_for_a_bad_url(client: httpx.Client) -> None:
    """A malformed host gives a RETRY result with the reason, not an exception."""
    destination = Destination(host="http://[not a host", public_key="pk", secret_key="sk")
    result = OtlpExporter(client).export([chat_trace()], destination)
    assert result.outcome is Outcome.RETRY
    assert result.message


def test_otlp_export_encoded_frames_stored_spans_into_one_request(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """Stored spans of several traces arrive as one request the schema reads back whole."""
    traces = [chat_trace(), workflow_trace(5)]
    exporter = OtlpExporter(client)
    result = exporter.export_encoded(
        [exporter.encode(t) for t in traces], destination_for(langfuse)
    )
    assert result.outcome is Outcome.DELIVERED
    (request,) = langfuse.received(OTLP_PATH)
    assert request.headers["content-encoding"] == "gzip"
    check_otlp(ExportTraceServiceRequest.FromString(request.body), traces)


def test_otlp_export_encoded_splits_over_the_cap_and_leaves_too_large_traces_to_the_caller(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """Stored spans are packed into requests under the cap; a trace larger than the cap alone
    is not sent but answered TOO_LARGE (the caller holds the trace info to shrink it)."""
    traces = [workflow_trace(20, run_id=f"run-{n}") for n in range(6)]
    cap = 60_000
    exporter = OtlpExporter(client, max_request_bytes=cap)
    huge = workflow_trace(200, run_id="huge")
    encoded = [exporter.encode(t) for t in [*traces, huge]]
    assert len(encoded[-1].body) > cap
    result = exporter.export_encoded(encoded, destination_for(langfuse))
    requests = langfuse.received(OTLP_PATH)
    assert len(requests) > 1 and all(len(r.body) <= cap for r in requests)
    assert result.outcome is Outcome.TOO_LARGE
    assert result.outcome_of(huge.id) is Outcome.TOO_LARGE
    assert all(result.outcome_of(t.id) is Outcome.DELIVERED for t in traces)
    sent = [ExportTraceServiceRequest.FromString(r.body) for r in requests]
    assert sum(len(s.resource_spans[0].scope_spans[0].spans) for s in sent) == sum(
        len(t.observations) for t in traces
    )


def test_otlp_export_encoded_refuses_bodies_of_another_format(client: httpx.Client) -> None:
    """A body of another format is a caller bug, refused before anything is sent."""
    exporter = OtlpExporter(client)
    other = replace(exporter.encode(chat_trace()), wire_format="otlp-spans/0")
    with pytest.raises(ValueError, match="otlp-spans/1"):
        exporter.export_encoded([other], Destination("http://127.0.0.1:9", "pk", "sk"))


def test_otlp_encode_fits_a_trace_over_the_cap_with_truncation_markers(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """Encoding a built trace larger than the request cap cuts its largest fields to fit,
    so it is sent (marked truncated) instead of refused."""
    trace = _chat_trace_with_big_output()
    cap = 100_000
    exporter = OtlpExporter(client, max_request_bytes=cap)
    encoded = exporter.encode(trace)
    assert cap // 2 < len(encoded.body) <= cap  # cut to fit, not to half
    result = exporter.export_encoded([encoded], destination_for(langfuse))
    assert result.outcome is Outcome.DELIVERED
    (request,) = langfuse.received(OTLP_PATH)
    assert len(request.body) <= cap
    llm = _llm_attributes(request.body)
    assert "…[truncated " in llm["langfuse.observation.output"]


def test_request_bodies_are_one_plain_gzip_member_that_any_gunzip_reads() -> None:
    """ISA-L writes an ordinary gzip member: magic, deflate, no name, mtime 0 (equal bodies
    compress to equal bytes), readable by the standard library as Langfuse's Node server
    reads it."""
    body = b"".join(b'{"node": %d, "status": "succeeded"}' % i for i in range(5_000))
    packed = gzip(body)
    assert packed[:3] == b"\x1f\x8b\x08"
    assert packed[3] == 0 and packed[4:8] == b"\0\0\0\0"
    assert stdlib_gzip.decompress(packed) == body
    assert gzip(body) == packed
    assert len(packed) < len(body) / 2

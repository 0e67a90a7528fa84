"""``POST /api/public/otel/v1/traces``: Langfuse's OTLP/HTTP trace receiver."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from opstrail.collector.http import (
    json_response,
    project_caller,
    read_noted_body,
    state_of,
)
from opstrail.collector.otlp import (
    JSON,
    PROTOBUF,
    OtlpRequestError,
    decode_request,
    decompress,
    iter_spans,
    media_type,
    span_observation,
    span_trace,
)
from opstrail.collector.requests_log import RequestNotes
from opstrail.collector.store import ObservationCopy, TraceCopy, fingerprint
from opstrail.collector.values import utc_now_text

MAX_INGESTION_VERSION = 4


async def receive_traces(request: Request, notes: RequestNotes) -> Response:
    """Validate, decode and store one OTLP export; answers as Langfuse's route does."""
    state = state_of(request)
    if not state.config.accepts_otlp:
        return json_response(404, {"message": "Not Found"})
    caller = project_caller(request, style="otel")
    if isinstance(caller, Response):
        return caller
    notes.public_key = caller.key.public_key
    version = request.headers.get("x-langfuse-ingestion-version")
    if version is not None and (
        not version.strip().isdigit() or int(version) > MAX_INGESTION_VERSION
    ):
        return json_response(
            400, {"error": f"Unsupported x-langfuse-ingestion-version: {version!r}"}
        )
    if media_type(request.headers.get("content-type")) not in (PROTOBUF, JSON):
        return json_response(400, {"error": "Invalid content type"})
    limit = state.config.otlp_max_bytes
    body = await read_noted_body(request, limit, notes)
    if isinstance(body, Response):
        return body
    try:
        raw = decompress(body, request.headers.get("content-encoding"), max_bytes=limit)
        id_text: dict[bytes, str] = {}
        export = decode_request(raw, request.headers.get("content-type"), id_text)
        spans = list(iter_spans(export, id_text))
    except OtlpRequestError as exc:
        return json_response(400, {"error": str(exc)})
    notes.items = len(spans)
    if not spans or state.faults.accept_only:
        return json_response(200, {})
    project_id = caller.project_id
    assert project_id is not None  # project_caller refused project-less keys
    received_at = utc_now_text()
    observations = []
    traces = []
    for decoded in spans:
        observation = span_observation(decoded, received_at)
        observations.append(
            ObservationCopy(
                project_id=project_id,
                id=decoded.span_id,
                trace_id=decoded.trace_id,
                source="otlp",
                is_copy=True,
                received_at=received_at,
                data=observation,
                fingerprint=fingerprint(observation),
            )
        )
        trace = span_trace(decoded, observation)
        if trace is not None:
            traces.append(TraceCopy(project_id, decoded.trace_id, "otlp", received_at, trace))
    state.store.add(observations=observations, traces=traces)
    return json_response(200, {})

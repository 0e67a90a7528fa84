"""``LegacyExporter``: traces as batch events to ``POST /api/public/ingestion`` (contract §4).

The answer is a 207 with per-event results, read here per trace: a trace is delivered only if
every one of its events succeeded; "Event type not accepted" (a v4 server in ``events_only``
mode) is ``WRONG_PATH``, other per-event 400s ``REJECTED``, 5xx ``RETRY``. Events stay at most
1 MB and requests at most 3.5 MB: larger traces have their largest fields cut, and traces are
spread over several requests when needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

from opstrail.exporters.base import Destination, ExportResult, Outcome, TraceResult
from opstrail.exporters.fields import json_bytes
from opstrail.exporters.http import (
    DEFAULT_TIMEOUT,
    MESSAGE_CAP_CHARS,
    STOPS_DESTINATION,
    auth_headers,
    result_for_status,
    send,
    url,
    worst,
)
from opstrail.exporters.http_exporter import HttpExporter
from opstrail.exporters.legacy.encode import batch_metadata, encode_trace_events
from opstrail.exporters.limits import shrink_trace
from opstrail.netguard import HostRules
from opstrail.tracing.tree import Trace

INGESTION_PATH: Final = "/api/public/ingestion"
LEGACY_MAX_REQUEST_BYTES: Final = 3_500_000
LEGACY_MAX_EVENT_BYTES: Final = 1_000_000
EVENT_TYPE_NOT_ACCEPTED: Final = "Event type not accepted"


def _event_bytes(trace: Trace) -> list[tuple[str, bytes]]:
    return [(event["id"], json_bytes(event)) for event in encode_trace_events(trace)]


def _largest_event(trace: Trace) -> int:
    return max((len(data) for _, data in _event_bytes(trace)), default=0)


def _total_events(trace: Trace) -> int:
    return sum(len(data) + 1 for _, data in _event_bytes(trace))


def event_outcome(status: int, message: str) -> Outcome:
    """The outcome of one per-event error of a 207 answer (contract §4.8)."""
    if status == 400 and message == EVENT_TYPE_NOT_ACCEPTED:
        return Outcome.WRONG_PATH
    if status == 401:
        return Outcome.UNAUTHORIZED
    if status == 403:
        return Outcome.FORBIDDEN
    if status == 429:
        return Outcome.RATE_LIMITED
    if status >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


def _error_text(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or "")
    detail = error.get("error")
    if detail:
        detail_text = detail if isinstance(detail, str) else json.dumps(detail)
        message = f"{message}: {detail_text}" if message else detail_text
    return f"HTTP {error.get('status')} {message}".strip()[:MESSAGE_CAP_CHARS]


def read_multi_status(
    data: object, trace_of_event: Mapping[str, str], status_code: int
) -> ExportResult:
    """Turn a ``{"successes": [...], "errors": [...]}`` answer into per-trace results."""
    if not isinstance(data, Mapping) or not isinstance(data.get("errors"), list):
        return ExportResult(
            Outcome.RETRY,
            status_code,
            "the server answered without per-event results; sent again to be sure",
        )
    succeeded = {
        str(item.get("id")) for item in data.get("successes") or [] if isinstance(item, Mapping)
    }
    errors = [error for error in data["errors"] if isinstance(error, Mapping)]
    answered = succeeded | {str(error.get("id")) for error in errors}
    failures: dict[str, list[tuple[Outcome, str]]] = {}
    for error in errors:
        event = str(error.get("id"))
        trace_id = trace_of_event.get(event)
        if trace_id is None:
            continue  # "unknown" ids: the affected event stays unanswered below
        status = int(error.get("status") or 500)
        outcome = event_outcome(status, str(error.get("message") or ""))
        failures.setdefault(trace_id, []).append((outcome, _error_text(error)))
    for event, trace_id in trace_of_event.items():
        if event not in answered:
            failures.setdefault(trace_id, []).append(
                (Outcome.RETRY, f"the server reported nothing for event {event}")
            )
    results: dict[str, TraceResult] = {}
    for trace_id in dict.fromkeys(trace_of_event.values()):
        problems = failures.get(trace_id)
        if not problems:
            results[trace_id] = TraceResult(trace_id, Outcome.DELIVERED)
            continue
        outcome = worst(o for o, _ in problems)
        message = "; ".join(dict.fromkeys(m for o, m in problems if o is outcome))
        results[trace_id] = TraceResult(trace_id, outcome, message[:MESSAGE_CAP_CHARS])
    overall = worst(r.outcome for r in results.values())
    first = next((r for r in results.values() if r.outcome is overall), None)
    return ExportResult(
        overall,
        status_code=status_code,
        message=first.message if first and overall is not Outcome.DELIVERED else "",
        traces=results,
    )


class LegacyExporter(HttpExporter):
    """Sends traces over the legacy batch API and scores over the scores API.

    Args:
        client: the destination's own HTTP client; one is created (and closed by ``close``)
            when omitted.
        timeout: per-request timeout.
        rules: where a created client may connect (``HttpExporter``).
        max_request_bytes: cap of one batch request body.
        max_event_bytes: cap of one event.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        rules: HostRules | None = None,
        max_request_bytes: int = LEGACY_MAX_REQUEST_BYTES,
        max_event_bytes: int = LEGACY_MAX_EVENT_BYTES,
    ) -> None:
        super().__init__(client, timeout=timeout, rules=rules)
        self._max_request_bytes = max_request_bytes
        self._max_event_bytes = max_event_bytes

    def _fit(self, trace: Trace) -> tuple[Trace, list[tuple[str, bytes]]]:
        events = _event_bytes(trace)
        if max((len(d) for _, d in events), default=0) > self._max_event_bytes:
            trace = shrink_trace(trace, self._max_event_bytes, measure=_largest_event)
            events = _event_bytes(trace)
        if sum(len(d) + 1 for _, d in events) > self._request_budget:
            trace = shrink_trace(trace, self._request_budget, measure=_total_events)
            events = _event_bytes(trace)
        return trace, events

    @property
    def _request_budget(self) -> int:
        return self._max_request_bytes - 200  # the envelope around the events

    def export(self, traces: Sequence[Trace], destination: Destination) -> ExportResult:
        """Send ``traces`` as one batch (several when too large); see the module docstring."""
        if not traces:
            return ExportResult(Outcome.DELIVERED, message="nothing to send")
        results: dict[str, TraceResult] = {}
        chunks: list[list[tuple[str, list[tuple[str, bytes]]]]] = []
        size = 0
        for trace in traces:
            trace, events = self._fit(trace)
            trace_size = sum(len(d) + 1 for _, d in events)
            too_big = max((len(d) for _, d in events), default=0) > self._max_event_bytes
            if too_big or trace_size > self._request_budget:
                results[trace.id] = TraceResult(
                    trace.id, Outcome.TOO_LARGE, "trace does not fit even after truncation"
                )
                continue
            if not chunks or size + trace_size > self._request_budget:
                chunks.append([])
                size = 0
            chunks[-1].append((trace.id, events))
            size += trace_size
        stopped: ExportResult | None = None
        last: ExportResult | None = None
        for chunk in chunks:
            if stopped is not None:
                # Nothing more gets through now (auth, path, rate limit, server down).
                for trace_id, _ in chunk:
                    results[trace_id] = TraceResult(trace_id, stopped.outcome, stopped.message)
                continue
            result = self._post(chunk, destination)
            last = result
            # A whole-request failure stops the rest; inside a 207 only destination-wide
            # answers do (a per-event 500 concerns that trace alone).
            if result.outcome in STOPS_DESTINATION and (
                not result.traces or result.outcome is not Outcome.RETRY
            ):
                stopped = result
            for trace_id, _ in chunk:
                results[trace_id] = result.traces.get(trace_id) or TraceResult(
                    trace_id, result.outcome, result.message
                )
        overall = worst(r.outcome for r in results.values())
        first = next((r for r in results.values() if r.outcome is overall), None)
        single = len(chunks) == 1 and len(results) == len(chunks[0]) and last is not None
        return ExportResult(
            overall,
            status_code=last.status_code if single and last is not None else None,
            message=first.message if first and overall is not Outcome.DELIVERED else "",
            retry_after=last.retry_after if last is not None else None,
            traces=results,
        )

    def _post(
        self, chunk: list[tuple[str, list[tuple[str, bytes]]]], destination: Destination
    ) -> ExportResult:
        trace_of_event: dict[str, str] = {}
        payloads: list[bytes] = []
        for trace_id, events in chunk:
            for event_id, payload in events:
                trace_of_event[event_id] = trace_id
                payloads.append(payload)
        body = (
            b'{"batch":['
            + b",".join(payloads)
            + b'],"metadata":'
            + json_bytes(batch_metadata(len(payloads)))
            + b"}"
        )
        headers = {**auth_headers(destination), "Content-Type": "application/json"}
        response = send(
            self._client,
            "POST",
            url(destination, INGESTION_PATH),
            headers=headers,
            content=body,
            timeout=self._timeout,
        )
        if isinstance(response, ExportResult):
            return response
        if response.status_code in (200, 201, 207):
            data: object
            try:
                data = response.json()
            except ValueError:
                data = None
            if response.status_code == 207 or (isinstance(data, Mapping) and "errors" in data):
                return read_multi_status(data, trace_of_event, response.status_code)
            return ExportResult(Outcome.DELIVERED, status_code=response.status_code)
        return result_for_status(response, not_found_is_wrong_path=True)

"""``OtlpExporter``: traces as gzipped OTLP protobuf to ``POST /api/public/otel/v1/traces``.

One request per call when it fits in ``max_request_bytes`` (4 MB uncompressed, contract §3.3);
otherwise traces are packed into several requests, and a trace that alone is too large has its
largest fields cut first (``exporters.limits.shrink_trace``). The result then reports per trace.

Traces encoded when they were recorded (``EncodedTrace`` of format ``WIRE_FORMAT``: the
trace's spans as ``encode_spans`` writes them) are framed into a request as they are
(``export_encoded``); one too large alone is answered ``TOO_LARGE`` and left to the caller,
which holds the trace info to build and shrink it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import httpx
from isal import isal_zlib

from opstrail.exporters.base import (
    Destination,
    EncodedTrace,
    ExportResult,
    Outcome,
    TraceResult,
)
from opstrail.exporters.http import (
    DEFAULT_TIMEOUT,
    STOPS_DESTINATION,
    auth_headers,
    result_for_status,
    send,
    url,
    worst,
)
from opstrail.exporters.http_exporter import HttpExporter
from opstrail.exporters.limits import shrink_trace
from opstrail.exporters.otlp.encode import encode_bytes, encode_spans, frame_spans
from opstrail.netguard import HostRules
from opstrail.tracing.tree import Trace

OTLP_PATH: Final = "/api/public/otel/v1/traces"
OTLP_MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
INGESTION_VERSION: Final = "4"
# The stored-span format: bump the number when ``encode_spans`` changes what it writes, so that
# bodies stored by an older release are rebuilt from their trace info instead of sent.
WIRE_FORMAT: Final = "otlp-spans/1"
# Room for the request head (resource, scope and their lengths) around the spans.
_HEAD_ALLOWANCE: Final = 256
GZIP_LEVEL: Final = 2
GZIP_WBITS: Final = 31  # a gzip header and trailer, not a zlib one


def gzip(body: bytes) -> bytes:
    """``body`` as one gzip member (no file name, mtime 0, so equal bodies compress equally).

    ISA-L at level 2 compresses as well as zlib at level 3 in a sixth of the CPU
    (docs/benchmarks.md); both release the GIL while they work.
    """
    return isal_zlib.compress(body, GZIP_LEVEL, GZIP_WBITS)


def _encoded_size(trace: Trace) -> int:
    return len(encode_bytes([trace]))


def _spans_size(trace: Trace) -> int:
    return len(encode_spans(trace))


def encode_trace(trace: Trace) -> EncodedTrace:
    """The trace's spans in ``WIRE_FORMAT``, as the outbox stores them (pure)."""
    return EncodedTrace(trace.id, WIRE_FORMAT, encode_spans(trace), len(trace.observations))


class OtlpExporter(HttpExporter):
    """Sends traces over OTLP/HTTP and scores over the scores API.

    Args:
        client: the destination's own HTTP client; one is created (and closed by ``close``)
            when omitted. Never share a process-global client between destinations.
        timeout: per-request timeout.
        rules: where a created client may connect (``HttpExporter``).
        max_request_bytes: cap of one uncompressed request body.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        rules: HostRules | None = None,
        max_request_bytes: int = OTLP_MAX_REQUEST_BYTES,
    ) -> None:
        super().__init__(client, timeout=timeout, rules=rules)
        self._max_request_bytes = max_request_bytes

    def export(self, traces: Sequence[Trace], destination: Destination) -> ExportResult:
        """Send ``traces``; see the module docstring for splitting and truncation."""
        if not traces:
            return ExportResult(Outcome.DELIVERED, message="nothing to send")
        body = encode_bytes(traces)
        if len(body) <= self._max_request_bytes:
            return self._post(body, destination)
        return self._export_split(traces, destination)

    def _export_split(self, traces: Sequence[Trace], destination: Destination) -> ExportResult:
        results: dict[str, TraceResult] = {}
        chunks: list[tuple[list[str], list[bytes]]] = []
        size = 0
        for trace in traces:
            encoded = encode_bytes([trace])
            if len(encoded) > self._max_request_bytes:
                trace = shrink_trace(trace, self._max_request_bytes, measure=_encoded_size)
                encoded = encode_bytes([trace])
                if len(encoded) > self._max_request_bytes:
                    results[trace.id] = TraceResult(
                        trace.id,
                        Outcome.TOO_LARGE,
                        f"trace is {len(encoded)} bytes even after truncation "
                        f"(cap {self._max_request_bytes})",
                    )
                    continue
            if not chunks or size + len(encoded) > self._max_request_bytes:
                chunks.append(([], []))
                size = 0
            chunks[-1][0].append(trace.id)
            chunks[-1][1].append(encode_spans(trace))
            size += len(encoded)
        return self._post_chunks(chunks, results, destination)

    # --- traces encoded ahead of time ---------------------------------------------------------

    wire_format: str = WIRE_FORMAT

    def encode(self, trace: Trace) -> EncodedTrace:
        """The trace's spans in ``WIRE_FORMAT``; a trace over the request cap has its largest
        fields cut to fit it (with truncation markers), as ``export`` does."""
        encoded = encode_trace(trace)
        cap = self._max_request_bytes - _HEAD_ALLOWANCE
        if len(encoded.body) <= cap:
            return encoded
        return encode_trace(shrink_trace(trace, cap, measure=_spans_size))

    def export_encoded(
        self, traces: Sequence[EncodedTrace], destination: Destination
    ) -> ExportResult:
        """Frame stored spans into requests of at most ``max_request_bytes`` and send them.

        Raises:
            ValueError: a body of another format (a caller bug: check ``wire_format``).
        """
        if not traces:
            return ExportResult(Outcome.DELIVERED, message="nothing to send")
        wrong = [t.trace_id for t in traces if t.wire_format != WIRE_FORMAT]
        if wrong:
            raise ValueError(f"not {WIRE_FORMAT} bodies: traces {wrong[:3]}")
        cap = self._max_request_bytes - _HEAD_ALLOWANCE
        if sum(len(t.body) for t in traces) <= cap:
            return self._post(frame_spans([t.body for t in traces]), destination)
        results: dict[str, TraceResult] = {}
        chunks: list[tuple[list[str], list[bytes]]] = []
        size = 0
        for trace in traces:
            if len(trace.body) > cap:
                results[trace.trace_id] = TraceResult(
                    trace.trace_id,
                    Outcome.TOO_LARGE,
                    f"trace is {len(trace.body)} bytes (cap {self._max_request_bytes})",
                    sent=False,
                )
                continue
            if not chunks or size + len(trace.body) > cap:
                chunks.append(([], []))
                size = 0
            chunks[-1][0].append(trace.trace_id)
            chunks[-1][1].append(trace.body)
            size += len(trace.body)
        return self._post_chunks(chunks, results, destination)

    def _post_chunks(
        self,
        chunks: Sequence[tuple[Sequence[str], Sequence[bytes]]],
        results: dict[str, TraceResult],
        destination: Destination,
    ) -> ExportResult:
        """Send each chunk (its trace ids and their spans) as one request, in order, until the
        destination stops taking requests; report per trace (``results`` holds those already
        judged)."""
        stopped: ExportResult | None = None
        retry_after: float | None = None
        for trace_ids, spans in chunks:
            if stopped is None:
                result = self._post(frame_spans(spans), destination)
                if result.outcome in STOPS_DESTINATION:
                    stopped = result
            else:
                # Nothing more gets through now (auth, rate limit, server down): not sent.
                result = stopped
            retry_after = result.retry_after or retry_after
            for trace_id in trace_ids:
                results[trace_id] = TraceResult(trace_id, result.outcome, result.message)
        overall = worst(r.outcome for r in results.values())
        first = next((r for r in results.values() if r.outcome is overall), None)
        return ExportResult(
            overall,
            message=first.message if first else "",
            retry_after=retry_after,
            traces=results,
        )

    def _post(self, body: bytes, destination: Destination) -> ExportResult:
        headers = {
            **auth_headers(destination),
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "x-langfuse-ingestion-version": INGESTION_VERSION,
        }
        response = send(
            self._client,
            "POST",
            url(destination, OTLP_PATH),
            headers=headers,
            content=gzip(body),
            timeout=self._timeout,
        )
        if isinstance(response, ExportResult):
            return response
        return result_for_status(response, not_found_is_wrong_path=True)

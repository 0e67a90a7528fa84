"""The seam between delivery and the wire: ``Exporter``, ``Destination``, ``ExportResult``.

Exporters return a value and never raise for a remote failure; the dispatcher decides what to
do with the outcome (``opstrail.delivery.policy``). Modelled on the OpenTelemetry SDK's
``SpanExporter``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from opstrail.tracing.tree import Score, Trace


class IngestionPath(StrEnum):
    """How a destination receives traces."""

    OTLP = "otlp"
    LEGACY = "legacy"


@dataclass(frozen=True, slots=True)
class Destination:
    """A Langfuse project to send to, with decrypted keys (never logged, never stored).

    ``host`` is normalised: scheme, host and optional sub-path, no trailing slash.
    ``key`` identifies the destination for acknowledgements: host plus project id.
    """

    host: str
    public_key: str
    secret_key: str = field(repr=False)
    project_id: str | None = None
    path: IngestionPath = IngestionPath.OTLP
    server_version: str | None = None
    # ``path`` was fixed by configuration (never re-probed), and when the server was last
    # probed (the path is re-probed when that is over a day ago: servers get upgraded).
    path_fixed: bool = False
    probed_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.host}#{self.project_id or self.public_key}"


class Outcome(StrEnum):
    """What happened to a request, or to one trace within it."""

    DELIVERED = "delivered"  # 2xx; final, never re-send
    RETRY = "retry"  # 5xx, timeout, connection error, per-event 500: try again later
    RATE_LIMITED = "rate_limited"  # 429: try again after retry_after
    UNAUTHORIZED = "unauthorized"  # 401: pause the destination, keep rows
    FORBIDDEN = "forbidden"  # 403: organization key or usage suspended; pause, keep rows
    REJECTED = "rejected"  # 400: the payload is wrong; dead-letter (bisect a batch first)
    TOO_LARGE = "too_large"  # 413: split the batch, truncate the largest fields
    WRONG_PATH = "wrong_path"  # legacy "Event type not accepted", or OTLP 404/405


@dataclass(frozen=True, slots=True)
class TraceResult:
    """The outcome of one trace inside a batch (a 207 answer reports per event).

    ``sent`` is false for a trace the exporter refused before sending (over its own cap).
    """

    trace_id: str
    outcome: Outcome
    message: str = ""
    sent: bool = True


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The outcome of one export call.

    ``outcome`` is the request's outcome; ``traces`` refines it per trace when the server
    answered per event (legacy 207). A trace absent from ``traces`` shares ``outcome``.
    """

    outcome: Outcome
    status_code: int | None = None
    message: str = ""
    retry_after: float | None = None
    traces: Mapping[str, TraceResult] = field(default_factory=dict)

    def outcome_of(self, trace_id: str) -> Outcome:
        result = self.traces.get(trace_id)
        return result.outcome if result else self.outcome


@dataclass(frozen=True, slots=True)
class EncodedTrace:
    """A trace already in one exporter's wire format, usually encoded as it was recorded.

    ``wire_format`` names the format and its version (``OtlpExporter.wire_format``); an
    exporter only takes bodies of its own format, so stored bodies of an older format are
    ignored and the trace is built again from its trace info.
    """

    trace_id: str
    wire_format: str
    body: bytes
    observations: int


class Exporter(Protocol):
    """Sends finished traces and scores to one kind of backend."""

    def export(self, traces: Sequence[Trace], destination: Destination) -> ExportResult:
        """Send ``traces`` in one request; never raise for a remote failure."""
        ...

    def export_score(self, score: Score, destination: Destination) -> ExportResult:
        """Create or replace one score."""
        ...

    def delete_score(self, score_id: str, destination: Destination) -> ExportResult:
        """Delete one score (a revoked rating)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class EncodingExporter(Exporter, Protocol):
    """An exporter that also sends traces encoded ahead of time (``EncodedTrace``).

    The dispatcher hands it stored bodies as they are; a trace it had to build (no stored body,
    or one of another format) goes through ``encode`` first.
    """

    wire_format: str

    def encode(self, trace: Trace) -> EncodedTrace:
        """Encode one trace in ``wire_format``."""
        ...

    def export_encoded(
        self, traces: Sequence[EncodedTrace], destination: Destination
    ) -> ExportResult:
        """Send encoded traces; a trace too large alone is answered ``TOO_LARGE`` per trace
        (the caller shrinks the built trace and sends it again)."""
        ...

"""``InMemoryExporter``: a real ``Exporter`` that keeps what it gets, for tests and previews.

It answers ``DELIVERED`` unless told otherwise: a fixed outcome (``answer_with``) or a queue of
answers consumed one per call (``queue``). Only traces and scores answered ``DELIVERED`` are
recorded as delivered; every call is recorded in ``calls``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opstrail.exporters.base import Destination, ExportResult, Outcome
from opstrail.tracing.tree import Score, Trace

__all__ = ["ExportCall", "InMemoryExporter"]


@dataclass(frozen=True, slots=True)
class ExportCall:
    """One call: ``kind`` is ``export``, ``export_score`` or ``delete_score``."""

    kind: str
    destination: Destination
    traces: tuple[Trace, ...] = ()
    score: Score | None = None
    score_id: str | None = None
    result: ExportResult | None = None


def _as_result(answer: Outcome | ExportResult) -> ExportResult:
    if isinstance(answer, ExportResult):
        return answer
    return ExportResult(answer, message=f"in-memory exporter answered {answer.value}")


class InMemoryExporter:
    """Records traces and scores instead of sending them; thread-safe."""

    def __init__(self, answer: Outcome | ExportResult = Outcome.DELIVERED) -> None:
        self._lock = threading.Lock()
        self._default = _as_result(answer)
        self._queued: deque[ExportResult] = deque()
        self._calls: list[ExportCall] = []
        self._traces: dict[str, Trace] = {}
        self._scores: dict[str, Score] = {}
        self.closed = False

    def answer_with(self, answer: Outcome | ExportResult) -> None:
        """Answer every later call (after queued answers) with ``answer``."""
        with self._lock:
            self._default = _as_result(answer)

    def queue(self, answers: Iterable[Outcome | ExportResult]) -> None:
        """Answer the next calls, one each, with ``answers`` before the default."""
        with self._lock:
            self._queued.extend(_as_result(a) for a in answers)

    def _next(self) -> ExportResult:
        return self._queued.popleft() if self._queued else self._default

    def export(self, traces: Sequence[Trace], destination: Destination) -> ExportResult:
        """Record ``traces``; those answered ``DELIVERED`` become ``delivered_traces``."""
        with self._lock:
            result = self._next()
            for trace in traces:
                if result.outcome_of(trace.id) is Outcome.DELIVERED:
                    self._traces[trace.id] = trace
            self._calls.append(ExportCall("export", destination, tuple(traces), result=result))
            return result

    def export_score(self, score: Score, destination: Destination) -> ExportResult:
        """Record ``score`` (replacing one with the same id)."""
        with self._lock:
            result = self._next()
            if result.outcome is Outcome.DELIVERED:
                self._scores[score.id] = score
            self._calls.append(ExportCall("export_score", destination, score=score, result=result))
            return result

    def delete_score(self, score_id: str, destination: Destination) -> ExportResult:
        """Forget the score ``score_id``."""
        with self._lock:
            result = self._next()
            if result.outcome is Outcome.DELIVERED:
                self._scores.pop(score_id, None)
            self._calls.append(
                ExportCall("delete_score", destination, score_id=score_id, result=result)
            )
            return result

    def close(self) -> None:
        """Mark the exporter closed (there is nothing to release)."""
        self.closed = True

    @property
    def calls(self) -> list[ExportCall]:
        """Every call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def delivered_traces(self) -> dict[str, Trace]:
        """Delivered traces by id (a re-sent trace replaces the earlier copy)."""
        with self._lock:
            return dict(self._traces)

    @property
    def scores(self) -> dict[str, Score]:
        """Current scores by id (created and not deleted)."""
        with self._lock:
            return dict(self._scores)

    def trace_ids_sent(self) -> list[str]:
        """Ids of every trace passed to ``export``, in order, repeats included."""
        with self._lock:
            return [t.id for call in self._calls for t in call.traces]

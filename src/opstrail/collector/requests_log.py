"""Counts and a bounded log of every request the collector answered (kept in memory)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final

MAX_RECORDS: Final = 10_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One answered request.

    ``items`` is the number of spans (OTLP) or events (legacy) in the body when it was parsed;
    ``injected`` tells that a fault answered instead of the endpoint.
    """

    endpoint: str
    method: str
    path: str
    status: int
    received_at: str
    public_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    items: int = 0
    injected: bool = False


@dataclass(slots=True)
class RequestNotes:
    """What a route learned about its request, for the log (filled while answering)."""

    public_key: str | None = None
    body_bytes: int = 0
    items: int = 0


class RequestLog:
    """Thread-safe request counters per endpoint, and the latest records."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._items: Counter[str] = Counter()
        self._records: deque[RequestRecord] = deque(maxlen=max_records)

    def add(self, record: RequestRecord) -> None:
        """Count and keep one record."""
        with self._lock:
            self._counts[record.endpoint] += 1
            if 200 <= record.status < 300:
                self._items[record.endpoint] += record.items
            self._records.append(record)

    def clear(self) -> None:
        """Forget every count and record."""
        with self._lock:
            self._counts.clear()
            self._items.clear()
            self._records.clear()

    def counts(self) -> dict[str, int]:
        """Requests per endpoint name."""
        with self._lock:
            return dict(self._counts)

    def accepted_items(self) -> dict[str, int]:
        """Spans/events per endpoint in requests answered 2xx (accept-only mode counts too)."""
        with self._lock:
            return dict(self._items)

    def records(self) -> list[RequestRecord]:
        """The latest records, oldest first."""
        with self._lock:
            return list(self._records)

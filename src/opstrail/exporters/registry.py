"""One exporter, with its own HTTP client, per destination.

``exporter_for`` builds a fresh exporter for a destination's path; ``ExporterRegistry`` keeps one
per destination for a dispatcher's lifetime and closes them all at the end. Nothing here is
process-global: each registry is built by its owner (the dispatcher) and passed down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from opstrail.errors import DeliveryError
from opstrail.exporters.base import Destination, EncodedTrace, Exporter, IngestionPath
from opstrail.exporters.http import DEFAULT_TIMEOUT
from opstrail.exporters.legacy.exporter import LegacyExporter
from opstrail.exporters.otlp.exporter import OtlpExporter, encode_trace
from opstrail.netguard import HostRules
from opstrail.tracing.tree import Trace

__all__ = ["ExporterRegistry", "exporter_for", "record_encoder"]


def record_encoder(path: IngestionPath) -> Callable[[Trace], EncodedTrace] | None:
    """How a trace bound for ``path`` is encoded when it is recorded, or ``None`` when that
    path's exporter builds its requests at send time. Only OTLP is stored: the legacy path
    serves servers older than 3.22, and builds its batches from the trace info."""
    if path is IngestionPath.OTLP:
        return encode_trace
    return None


def exporter_for(
    destination: Destination,
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    rules: HostRules | None = None,
) -> Exporter:
    """A new exporter for ``destination.path`` with its own ``httpx.Client``, which the
    exporter's ``close`` closes.

    The client connects only to addresses ``rules`` allow (checked per new connection; see
    ``opstrail.exporters.transport``); the default rules refuse what is always refused.
    """
    if destination.path is IngestionPath.LEGACY:
        return LegacyExporter(timeout=timeout, rules=rules)
    return OtlpExporter(timeout=timeout, rules=rules)


class ExporterRegistry:
    """Caches one exporter per (destination key, path); thread-safe; ``close()`` releases all.

    ``rules``: where the exporters' clients may connect (``exporter_for``).

    A destination whose path changes (a re-probe found a new server version) gets a new
    exporter; the old one is closed.
    """

    def __init__(
        self, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, rules: HostRules | None = None
    ) -> None:
        self._timeout = timeout
        self._rules = rules
        self._lock = threading.Lock()
        self._exporters: dict[str, tuple[IngestionPath, Exporter]] = {}
        self._closed = False

    def get(self, destination: Destination) -> Exporter:
        """The exporter for ``destination``, created on first use."""
        with self._lock:
            if self._closed:
                raise DeliveryError("the exporter registry is closed", code="registry_closed")
            cached = self._exporters.get(destination.key)
            if cached is not None and cached[0] is destination.path:
                return cached[1]
            if cached is not None:
                cached[1].close()
            exporter = exporter_for(destination, timeout=self._timeout, rules=self._rules)
            self._exporters[destination.key] = (destination.path, exporter)
            return exporter

    def discard(self, destination: Destination) -> None:
        """Close and forget the exporter of ``destination`` (its keys or host changed)."""
        with self._lock:
            cached = self._exporters.pop(destination.key, None)
        if cached is not None:
            cached[1].close()

    def close(self) -> None:
        """Close every exporter; later ``get`` calls fail."""
        with self._lock:
            exporters = [exporter for _, exporter in self._exporters.values()]
            self._exporters.clear()
            self._closed = True
        for exporter in exporters:
            exporter.close()

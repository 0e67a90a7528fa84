"""Test harness: a real collector over HTTP on 127.0.0.1, in a background thread.

Usage::

    with running_collector() as collector:
        exporter_under_test.send(..., host=collector.url, public_key="pk-lf-test",
                                 secret_key="sk-lf-test")
        collector.wait_for(lambda c: len(c.traces()) == 1, timeout=5)
        assert collector.traces()[0]["name"] == "message_..."

``traces()``, ``observations()`` and ``scores()`` return what Langfuse's public read API would
show (camelCase dicts), merged per id; observations add ``copies`` and ``identicalCopies``,
traces add ``shallow`` (no root span arrived) and hold their ``observations``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from opstrail.collector.app import create_collector_app
from opstrail.collector.config import CollectorConfig, KeyPair
from opstrail.collector.faults import FaultConfig
from opstrail.collector.reading import CollectorReader, Duplicate
from opstrail.collector.requests_log import RequestRecord
from opstrail.collector.server import CollectorServer

T = TypeVar("T")

DEFAULT_TEST_KEYS: tuple[tuple[str, str, str], ...] = (("pk-lf-test", "sk-lf-test", "proj-test"),)


class CollectorHandle:
    """What a test sees of a running collector."""

    def __init__(self, server: CollectorServer) -> None:
        self._server = server
        self._reader = CollectorReader(server.state.store)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use it as the Langfuse host)."""
        return self._server.url

    @property
    def port(self) -> int:
        """The listening port."""
        return self._server.port

    @property
    def config(self) -> CollectorConfig:
        """The collector's configuration."""
        return self._server.state.config

    def traces(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Received traces (each with its merged ``observations``), in order of arrival."""
        return self._reader.traces(project_id=project_id)

    def trace(self, trace_id: str, project_id: str | None = None) -> dict[str, Any] | None:
        """One received trace, or None."""
        return self._reader.trace(trace_id, project_id=project_id)

    def observations(
        self, trace_id: str | None = None, project_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Received observations merged per id (all, or one trace's)."""
        return self._reader.observations(project_id=project_id, trace_id=trace_id)

    def scores(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Stored scores (one per id; deleted ones are gone)."""
        return self._reader.scores(project_id=project_id)

    def duplicates(self, project_id: str | None = None) -> list[Duplicate]:
        """Observations that arrived more than once, and whether the copies were identical."""
        return self._reader.duplicates(project_id=project_id)

    def trace_ids(self, project_id: str | None = None) -> set[str]:
        """Ids of every trace with a record or an observation (cheap, for ``wait_for``)."""
        return {tid for _, tid in self._server.state.store.trace_ids(project_id=project_id)}

    def observation_ids(self, project_id: str | None = None) -> set[str]:
        """Distinct received observation ids (cheap, for ``wait_for``)."""
        return self._server.state.store.observation_ids(project_id=project_id)

    def copy_count(self, project_id: str | None = None) -> int:
        """Observation copies received in total; above ``len(observation_ids())`` = duplicates."""
        return self._server.state.store.copy_count(project_id=project_id)

    def clear(self) -> None:
        """Forget received data and request counts (faults stay), e.g. between tests."""
        self._server.state.store.clear()
        self._server.state.requests.clear()

    def requests(self) -> dict[str, int]:
        """Requests answered per endpoint: ``otel``, ``ingestion``, ``scores``, ``projects``,
        ``health``, ``ready``, ``read``, ``admin`` (faulted answers included)."""
        return self._server.state.requests.counts()

    def request_log(self) -> list[RequestRecord]:
        """The latest answered requests (status, headers of interest, sizes), oldest first."""
        return self._server.state.requests.records()

    def accepted_items(self) -> dict[str, int]:
        """Spans (``otel``) and events (``ingestion``) in 2xx-answered requests."""
        return self._server.state.requests.accepted_items()

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> None:
        """Replace the fault configuration (``FaultConfig`` or its fields as keywords).

        ``down_for_seconds`` takes effect at once: connections are refused for that long.
        """
        if faults is None:
            faults = FaultConfig(**fields)
        elif fields:
            raise TypeError("pass a FaultConfig or keywords, not both")
        self._server.state.faults.set(faults)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._server.state.faults.set(FaultConfig())

    def wait_for(
        self,
        predicate: Callable[[CollectorHandle], T] | Callable[[], T],
        timeout: float = 10.0,
        interval: float = 0.02,
    ) -> T:
        """Poll ``predicate`` (taking the handle, or nothing) until it is truthy.

        Returns:
            The first truthy value.

        Raises:
            TimeoutError: still falsy after ``timeout`` seconds (a guard against hangs).
        """
        takes_handle = bool(inspect.signature(predicate).parameters)
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self) if takes_handle else predicate()  # type: ignore[call-arg]
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"collector condition not met within {timeout} s")
            time.sleep(interval)


@contextmanager
def running_collector(
    *,
    keys: Iterable[KeyPair | tuple[str, ...] | str] = DEFAULT_TEST_KEYS,
    langfuse_version: str = "4.16.0",
    data_dir: Path | None = None,
    faults: FaultConfig | None = None,
    otlp_max_bytes: int | None = None,
    report_version: bool = True,
) -> Iterator[CollectorHandle]:
    """Run a collector on 127.0.0.1 and a free port for the ``with`` block.

    Args:
        keys: key pairs as ``KeyPair``, ``(pk, sk, project)`` tuples (project None = no
            project, ``"!org"`` = organization key) or ``"pk:sk[:project]"`` strings.
        langfuse_version: the Langfuse version to imitate (decides OTLP/legacy behaviour).
        data_dir: keep the SQLite file there (default: in memory).
        faults: faults active from the start.
        otlp_max_bytes: OTLP request limit (default 5 MB).
        report_version: False makes health answer without a version (a proxy in front).
    """
    extra: dict[str, Any] = {}
    if otlp_max_bytes is not None:
        extra["otlp_max_bytes"] = otlp_max_bytes
    config = CollectorConfig(
        keys=tuple(KeyPair.coerce(k) for k in keys),
        langfuse_version=langfuse_version,
        data_dir=data_dir,
        faults=faults or FaultConfig(),
        report_version=report_version,
        **extra,
    )
    server = CollectorServer(create_collector_app(config))
    server.start()
    try:
        yield CollectorHandle(server)
    finally:
        server.stop()

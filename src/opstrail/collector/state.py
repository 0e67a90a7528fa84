"""Everything one collector app holds; built by ``create_collector_app``, never global."""

from __future__ import annotations

from dataclasses import dataclass

from opstrail.collector.config import CollectorConfig
from opstrail.collector.faults import FaultInjector
from opstrail.collector.requests_log import RequestLog
from opstrail.collector.store import CollectorStore


@dataclass(frozen=True, slots=True)
class CollectorState:
    """The config, the store, the fault injector and the request log of one collector."""

    config: CollectorConfig
    store: CollectorStore
    faults: FaultInjector
    requests: RequestLog

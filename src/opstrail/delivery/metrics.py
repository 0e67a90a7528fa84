"""Delivery metrics in a Prometheus ``CollectorRegistry`` handed in by the owner (the app
instance or the worker process): never the process-global registry.

Counters are this process's dispatcher work; ``OutboxCollector`` reads the outbox at scrape
time, so traces recorded and the backlog per destination are right whichever process sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from opstrail.storage.tables.outbox import DUE_STATES, AppDeliveryState, OutboxRow

LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class DeliveryMetrics:
    """Counters and the latency histogram of one dispatcher, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "opstrail_traces_delivered",
            "Traces and scores acknowledged by their destination.",
            ["destination"],
            registry=registry,
        )
        self.observations = Counter(
            "opstrail_observations_delivered",
            "Observations acknowledged by their destination.",
            ["destination"],
            registry=registry,
        )
        self.retried = Counter(
            "opstrail_traces_retried",
            "Delivery attempts that will be retried (5xx, network, 429, pause).",
            ["destination", "code"],
            registry=registry,
        )
        self.dead = Counter(
            "opstrail_traces_dead",
            "Traces given up (dead-lettered) by this dispatcher, by reason.",
            ["code"],
            registry=registry,
        )
        self.requests = Counter(
            "opstrail_export_requests",
            "Export requests sent, by outcome.",
            ["destination", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "opstrail_delivery_latency_seconds",
            "Time from the outbox commit to the destination's acknowledgement.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class OutboxCollector(Collector):
    """Reads outbox totals at scrape time: rows recorded, rows per state, backlog per
    destination (waiting rows by their app's last known destination)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self._session_factory() as session:
            by_state: dict[str, int] = {
                state: int(count)
                for state, count in session.execute(
                    select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
                )
            }
            backlog = session.execute(
                select(AppDeliveryState.destination_key, func.count())
                .select_from(OutboxRow)
                .outerjoin(AppDeliveryState, AppDeliveryState.app_id == OutboxRow.app_id)
                .where(OutboxRow.state.in_(DUE_STATES))
                .group_by(AppDeliveryState.destination_key)
            ).all()
        recorded = CounterMetricFamily(
            "opstrail_traces_recorded", "Traces and scores written to the outbox."
        )
        recorded.add_metric([], float(sum(by_state.values())))
        yield recorded
        states = GaugeMetricFamily(
            "opstrail_outbox_rows", "Outbox rows by state.", labels=["state"]
        )
        for state, count in sorted(by_state.items()):
            states.add_metric([state], float(count))
        yield states
        waiting = GaugeMetricFamily(
            "opstrail_delivery_backlog",
            "Rows waiting for delivery, by destination (empty: not tried yet).",
            labels=["destination"],
        )
        for key, count in backlog:
            waiting.add_metric([key or ""], float(count))
        yield waiting

"""``GET /metrics``: Prometheus text from this app instance's own registry.

The registry is built per app in ``services.bootstrap.start_services`` (outbox totals read at
scrape time, plus the embedded dispatcher's counters); the process-global ``REGISTRY`` is never
used, so two apps in one process never mix their numbers.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Delivery metrics: traces recorded, delivered, retried, dead; latency; backlog."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

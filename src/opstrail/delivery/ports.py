"""What delivery needs from the layers beside it, as protocols.

The configuration layer (``opstrail.config.destinations.ConfigDestinationResolver``) implements
``DestinationResolver``; delivery never imports it (they are siblings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session

from opstrail.exporters.base import Destination, Exporter, IngestionPath


class DestinationResolver(Protocol):
    """Finds where an app's traces go, with decrypted keys, at send time."""

    def resolve(self, session: Session, app_id: str) -> Destination | None:
        """The app's destination, or ``None`` when tracing is not configured or disabled."""
        ...


# Builds (or reuses) the exporter of one destination; one HTTP client per destination.
ExporterFactory = Callable[[Destination], Exporter]


PathProbe = Callable[[Destination], IngestionPath]
"""Asks a destination's server which ingestion path it takes now (raises when it cannot
tell); the dispatcher calls it when the stored answer is over a day old."""

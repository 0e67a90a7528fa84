"""``HttpExporter``: what the OTLP and legacy exporters share besides their trace encoding.

Both own (or borrow) one HTTP client per destination and send feedback scores over the same
scores API (decisions.md, "Scores"); only ``export`` differs between the ingestion paths.
"""

from __future__ import annotations

import httpx

from opstrail.exporters.base import Destination, ExportResult
from opstrail.exporters.http import DEFAULT_TIMEOUT
from opstrail.exporters.scores import delete_score, post_score
from opstrail.exporters.transport import guarded_client
from opstrail.netguard import HostRules
from opstrail.tracing.tree import Score


class HttpExporter:
    """The HTTP client of one destination and the score calls over it.

    Args:
        client: the destination's own HTTP client; one is created (and closed by ``close``)
            when omitted, over a ``GuardedTransport``. Never share a process-global client
            between destinations.
        timeout: per-request timeout.
        rules: where the created client may connect (the deployment's ``HostRules``); the
            default refuses only what is always refused. Ignored when ``client`` is given.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        rules: HostRules | None = None,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            client = guarded_client(rules if rules is not None else HostRules(), timeout=timeout)
        self._client = client
        self._timeout = timeout

    def export_score(self, score: Score, destination: Destination) -> ExportResult:
        """Create or replace one score over ``POST /api/public/scores``."""
        return post_score(self._client, score, destination, timeout=self._timeout)

    def delete_score(self, score_id: str, destination: Destination) -> ExportResult:
        """Delete one score; 404 counts as delivered."""
        return delete_score(self._client, score_id, destination, timeout=self._timeout)

    def close(self) -> None:
        """Close the HTTP client if this exporter created it."""
        if self._owns_client:
            self._client.close()

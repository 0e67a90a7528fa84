"""What a run needs from outside the runtime, as protocols the services layer implements.

The runtime never imports storage; services pass implementations of these in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opstrail.tracing.info import RetrievedDocument


class Retriever(Protocol):
    """Knowledge retrieval over local datasets."""

    def retrieve(
        self, query: str, dataset_ids: Sequence[str], *, top_k: int = 4,
        score_threshold: float | None = None,
    ) -> tuple[list[RetrievedDocument], list[str]]:
        """Return matching chunks, best first, and warnings (e.g. unknown dataset ids)."""
        ...

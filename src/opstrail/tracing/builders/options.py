"""Options of the trace builders (re-exported by ``opstrail.tracing.build``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """How to build traces.

    Args:
        low_cardinality_names: name traces ``workflow`` / ``message`` instead of
            ``workflow_<workflow_run_id>`` / ``message_<message_id>`` (``generate_name``
            either way), so Langfuse dashboards can group by name.
        release: the deployment's release, sent as the trace's ``release``.
    """

    low_cardinality_names: bool = False
    release: str | None = None

"""Workflow graphs of workflow and chatflow apps (placeholder until the engine lands).

``parse_graph`` turns ``workflow`` of a DSL document into a checked graph, or refuses it
naming the node; it returns the warnings of an import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opstrail.errors import DslError


def parse_graph(workflow: Mapping[str, Any], *, mode: str) -> tuple[object, list[str]]:
    """Check a workflow graph.

    Raises:
        DslError: always, until the workflow engine lands.
    """
    raise DslError(f"{mode} apps are not supported yet: the workflow engine is not built")

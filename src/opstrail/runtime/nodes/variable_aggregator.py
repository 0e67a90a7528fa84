"""variable-aggregator (legacy name variable-assigner): the first input that has a value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.variables import MISSING


def _first(ctx: NodeContext, selectors: Sequence[Any]) -> Any:
    for selector in selectors:
        value = ctx.pool.lookup(selector)
        if value is not MISSING and value is not None:
            return value
    return None


def handle(ctx: NodeContext) -> NodeResult:
    """``output`` (or ``<group>.output`` per group when groups are enabled)."""
    settings = ctx.data.get("advanced_settings") or {}
    if settings.get("group_enabled"):
        outputs: dict[str, Any] = {}
        for group in settings.get("groups") or []:
            name = str(group.get("group_name") or "")
            outputs[name] = {"output": _first(ctx, group.get("variables") or [])}
        return NodeResult(outputs=outputs)
    return NodeResult(outputs={"output": _first(ctx, ctx.data.get("variables") or [])})

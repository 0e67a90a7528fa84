"""list-operator: filters, sorts, extracts and truncates an array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.conditions import compare
from opstrail.runtime.workflow.templates import render_references
from opstrail.runtime.workflow.variables import MISSING


def _field(item: Any, key: str) -> Any:
    if not key:
        return item
    if isinstance(item, Mapping):
        if key == "type" and "type" not in item and "mime_type" in item:
            return str(item["mime_type"]).split("/")[0]
        return item.get(key, MISSING)
    return item


def handle(ctx: NodeContext) -> NodeResult:
    """Outputs ``result``, ``first_record``, ``last_record``."""
    value = ctx.pool.lookup(ctx.data.get("variable") or [])
    if value is MISSING or value is None:
        value = []
    if not isinstance(value, list):
        raise ctx.fail("the list operator's input is not an array")
    items = list(value)
    filter_by = ctx.data.get("filter_by") or {}
    if filter_by.get("enabled"):
        for condition in filter_by.get("conditions") or []:
            key = str(condition.get("key") or "")
            expected = condition.get("value")
            if isinstance(expected, str):
                expected = render_references(expected, ctx.pool)
            operator = str(condition.get("comparison_operator") or "")
            items = [i for i in items if compare(operator, _field(i, key), expected)]
    extract = ctx.data.get("extract_by") or {}
    if extract.get("enabled"):
        serial = render_references(str(extract.get("serial") or "1"), ctx.pool)
        try:
            position = int(serial)
        except ValueError as exc:
            raise ctx.fail(f"extract serial {serial!r} is not a number") from exc
        if position < 1 or position > len(items):
            raise ctx.fail(f"extract serial {position} is out of range (1..{len(items)})")
        items = [items[position - 1]]
    order = ctx.data.get("order_by") or {}
    if order.get("enabled"):
        key = str(order.get("key") or "")

        def sort_key(item: Any) -> tuple[int, Any]:
            found = _field(item, key)
            return (1, "") if found in (MISSING, None) else (0, found)

        items.sort(key=sort_key, reverse=str(order.get("value") or "asc") == "desc")
    limit = ctx.data.get("limit") or {}
    if limit.get("enabled"):
        items = items[: max(0, int(limit.get("size") or 0))]
    return NodeResult(
        outputs={"result": items, "first_record": items[0] if items else None,
                 "last_record": items[-1] if items else None},
        inputs={"variable": value},
    )

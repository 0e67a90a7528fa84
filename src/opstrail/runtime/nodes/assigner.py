"""assigner: writes conversation (and loop) variables; versions 1 and 2 of the node."""

from __future__ import annotations

import math
from typing import Any

from opstrail.errors import RuntimeFailure
from opstrail.runtime.nodes.base import NodeContext, NodeResult


def apply_operation(operation: str, current: Any, value: Any) -> Any:
    """The new value after ``operation`` (Dify's v2 operations).

    Raises:
        RuntimeFailure: the operation does not fit the variable's type.
    """
    if operation in ("over-write", "set"):
        return value
    if operation == "clear":
        if isinstance(current, list):
            return []
        if isinstance(current, dict):
            return {}
        if isinstance(current, int | float) and not isinstance(current, bool):
            return 0
        return "" if isinstance(current, str) else None
    if operation in ("append", "extend", "remove-first", "remove-last"):
        items = list(current) if isinstance(current, list) else ([] if current in (None, "")
                                                                 else None)
        if items is None:
            raise RuntimeFailure(f"{operation} needs an array variable", code="invalid_operation")
        if operation == "append":
            return [*items, value]
        if operation == "extend":
            if not isinstance(value, list):
                raise RuntimeFailure("extend needs an array value", code="invalid_operation")
            return [*items, *value]
        if operation == "remove-first":
            return items[1:]
        return items[:-1]
    if operation in ("+=", "-=", "*=", "/="):
        if isinstance(current, bool) or not isinstance(current, int | float):
            current = 0 if current in (None, "") else current
        if not isinstance(current, int | float) or isinstance(value, bool) or not isinstance(
                value, int | float):
            try:
                current, value = float(current), float(value)
            except (TypeError, ValueError) as exc:
                raise RuntimeFailure(f"{operation} needs numbers",
                                     code="invalid_operation") from exc
        if operation == "/=" and value == 0:
            raise RuntimeFailure("division by zero in /=", code="invalid_operation")
        try:
            if operation == "+=":
                result = current + value
            elif operation == "-=":
                result = current - value
            elif operation == "*=":
                result = current * value
            else:
                result = current / value
        except OverflowError as exc:
            raise RuntimeFailure(f"{operation} overflowed", code="invalid_operation") from exc
        if isinstance(result, float) and not math.isfinite(result):
            # inf or nan: neither a store (PostgreSQL JSON) nor a trace can keep it.
            raise RuntimeFailure(f"{operation} gave {result}, not a finite number",
                                 code="invalid_operation")
        return result
    raise RuntimeFailure(f"unknown assigner operation {operation!r}", code="invalid_operation")


def handle(ctx: NodeContext) -> NodeResult:
    """Apply each item in order; the outputs show what was written."""
    items: list[dict[str, Any]]
    if str(ctx.data.get("version") or "1") == "2" or "items" in ctx.data:
        items = [dict(i) for i in ctx.data.get("items") or []]
    else:  # version 1: one selector, one input variable, a write mode
        items = [{
            "variable_selector": ctx.data.get("assigned_variable_selector") or [],
            "input_type": "variable",
            "operation": ctx.data.get("write_mode") or "over-write",
            "value": ctx.data.get("input_variable_selector") or [],
        }]
    written: dict[str, Any] = {}
    for item in items:
        selector = list(item.get("variable_selector") or [])
        if len(selector) < 2:
            raise ctx.fail("an assigner item has no target variable")
        operation = str(item.get("operation") or item.get("write_mode") or "over-write")
        raw = item.get("value")
        value = ctx.pool.get(raw or []) if item.get("input_type", "variable") == "variable" \
            and isinstance(raw, list) else raw
        current = ctx.pool.get(selector)
        new = apply_operation(operation, current, value)
        ctx.pool.assign(selector, new)
        written[".".join(str(p) for p in selector)] = new
    return NodeResult(outputs={}, inputs={"items": items}, process_data={"written": written})

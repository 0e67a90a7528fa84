"""tool: runs a built-in tool; other provider types (workflow, api, mcp) are not here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.templates import render_references


def _value(ctx: NodeContext, spec: Any) -> Any:
    if not isinstance(spec, Mapping) or "type" not in spec:
        return spec  # older files: a plain value
    kind, value = spec.get("type"), spec.get("value")
    if kind == "variable":
        return ctx.pool.get(value or [])
    if isinstance(value, str):
        return render_references(value, ctx.pool)
    return value


def handle(ctx: NodeContext) -> NodeResult:
    """Resolve the parameters and run the tool; outputs ``text``, ``files``, ``json``."""
    name = str(ctx.data.get("tool_name") or "")
    provider_type = str(ctx.data.get("provider_type") or "builtin")
    args: dict[str, Any] = {}
    for key, spec in (ctx.data.get("tool_configurations") or {}).items():
        args[str(key)] = _value(ctx, spec)
    for key, spec in (ctx.data.get("tool_parameters") or {}).items():
        args[str(key)] = _value(ctx, spec)
    if provider_type != "builtin":
        raise ctx.fail(
            f"tool {name!r} ({provider_type} tool of provider "
            f"{ctx.data.get('provider_id') or ctx.data.get('provider_name')!r}) is not "
            "available here; only built-in tools run",
            code="tool_unavailable",
        )
    if ctx.env.tools is None:
        raise ctx.fail(f"tool {name!r} is not available: no tools are configured",
                       code="tool_unavailable")
    result = ctx.env.tools.run(name, args)
    if isinstance(result, str):
        text, json_items = result, []
    else:
        text = json.dumps(result, ensure_ascii=False, default=str)
        json_items = [result] if isinstance(result, Mapping) else (
            list(result) if isinstance(result, list) else [])
    return NodeResult(outputs={"text": text, "files": [], "json": json_items},
                      inputs=args, process_data={"tool_name": name,
                                                 "provider_type": provider_type},
                      tool_name=name)

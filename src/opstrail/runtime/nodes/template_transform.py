"""template-transform: a Jinja2 template (sandboxed) over the node's declared variables."""

from __future__ import annotations

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.templates import render_jinja


def declared_variables(ctx: NodeContext) -> dict[str, object]:
    """The node's ``variables`` as ``{name: value}``."""
    values: dict[str, object] = {}
    for item in ctx.data.get("variables") or []:
        name = str(item.get("variable") or "")
        if name:
            values[name] = ctx.pool.get(item.get("value_selector") or [])
    return values


def handle(ctx: NodeContext) -> NodeResult:
    """Render the template; the result is ``output``."""
    variables = declared_variables(ctx)
    output = render_jinja(ctx.env.jinja, str(ctx.data.get("template") or ""), variables,
                          ctx.env.jinja_cache)
    return NodeResult(outputs={"output": output}, inputs=variables)

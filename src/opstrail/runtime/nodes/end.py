"""end: collects the workflow's outputs from its value selectors."""

from __future__ import annotations

from opstrail.runtime.nodes.base import NodeContext, NodeResult


def handle(ctx: NodeContext) -> NodeResult:
    """Read each declared output; the run's outputs are those of the end node reached."""
    outputs = {}
    for item in ctx.data.get("outputs") or []:
        name = str(item.get("variable") or "")
        if name:
            outputs[name] = ctx.pool.get(item.get("value_selector") or [])
    if ctx.engine.listener is not None:
        streamed = ctx.engine.was_streamed(ctx.node.id)
        for name, value in outputs.items():
            if streamed:
                break  # its LLM already streamed the text token by token
            if isinstance(value, str) and value:
                ctx.engine.emit("text_chunk", {"text": value,
                                               "from_variable_selector": [ctx.node.id, name]})
    return NodeResult(outputs=outputs, inputs=dict(outputs))

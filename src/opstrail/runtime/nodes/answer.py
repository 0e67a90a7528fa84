"""answer (chatflow): renders its text and streams it as a part of the reply."""

from __future__ import annotations

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.templates import render_references


def handle(ctx: NodeContext) -> NodeResult:
    """Render the answer text and append it to the message."""
    text = render_references(str(ctx.data.get("answer") or ""), ctx.pool)
    ctx.engine.append_answer(text, ctx.node.id)
    return NodeResult(outputs={"answer": text, "files": []})

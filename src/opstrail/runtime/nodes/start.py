"""start: the run's inputs (checked before the run) plus the system variables."""

from __future__ import annotations

from opstrail.runtime.nodes.base import NodeContext, NodeResult


def handle(ctx: NodeContext) -> NodeResult:
    """Expose the inputs as this node's outputs (and the sys.* values, as Dify does)."""
    inputs = ctx.pool.namespace("__inputs__")
    outputs = dict(inputs)
    for key, value in ctx.pool.namespace("sys").items():
        outputs[f"sys.{key}"] = value
    return NodeResult(outputs=outputs, inputs=dict(outputs))

"""iteration and loop: run their body subgraph per item / per round.

Each iteration index and each loop round gets its own variable-pool layer, so parallel items
never see each other's values; their node executions carry the container's execution id and
the index. Events ``iteration_started/next/completed`` and ``loop_started/next/completed`` are
streamed as Dify names them.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.nodes.if_else import condition_resolver
from opstrail.runtime.workflow.conditions import evaluate_conditions
from opstrail.runtime.workflow.engine import loop_break
from opstrail.tracing.info import WorkflowRunStatus

MAX_PARALLEL_ITEMS: Final = 10
MAX_LOOP_ROUNDS: Final = 1000


def handle_body_start(ctx: NodeContext) -> NodeResult:
    """iteration-start / loop-start: the synthetic entry of a container's body."""
    return NodeResult(outputs={})


def handle_loop_end(ctx: NodeContext) -> NodeResult:
    """loop-end: ends the loop after this round."""
    raise loop_break()


def _event_base(ctx: NodeContext) -> dict[str, Any]:
    return {
        "id": ctx.execution_id,
        "node_id": ctx.node.id,
        "node_type": ctx.node.type,
        "title": ctx.node.title,
        "created_at": int(datetime.now(UTC).timestamp()),
        "extras": {},
    }


def handle_iteration(ctx: NodeContext) -> NodeResult:
    """Run the body once per element of ``iterator_selector``; ``output`` collects
    ``output_selector`` per element, in order."""
    engine = ctx.engine
    items = ctx.pool.get(ctx.data.get("iterator_selector") or [])
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ctx.fail("the iteration input is not an array")
    start = engine.graph.container_start(ctx.node.id)
    output_selector = ctx.data.get("output_selector") or []
    mode = str(ctx.data.get("error_handle_mode") or "terminated")
    parallel = bool(ctx.data.get("is_parallel"))
    workers = max(1, min(int(ctx.data.get("parallel_nums") or 10), MAX_PARALLEL_ITEMS))
    if engine.listener is not None:
        engine.emit("iteration_started", {**_event_base(ctx), "inputs": {"iterator": items},
                                          "metadata": {"iterator_length": len(items)}})

    def run_index(index: int, item: Any) -> tuple[int, str | None, Any]:
        pool = ctx.pool.child()
        pool.set(ctx.node.id, "item", item)
        pool.set(ctx.node.id, "index", index)
        scope = replace(ctx.scope, iteration_id=ctx.execution_id,
                        iteration_node_id=ctx.node.id, iteration_index=index, branches=())
        if engine.listener is not None:
            engine.emit("iteration_next", {**_event_base(ctx), "index": index,
                                           "pre_iteration_output": None})
        outcome = engine.run_graph(start, ctx.node.id, pool, scope)
        if outcome.status == WorkflowRunStatus.FAILED:
            return index, outcome.error or "failed", None
        return index, None, pool.get(output_selector) if output_selector else None

    results: list[tuple[int, str | None, Any]] = []
    if parallel and len(items) > 1:
        with ThreadPoolExecutor(max_workers=workers,
                                thread_name_prefix=f"iter-{ctx.node.id[:8]}") as pool_exec:
            futures = [pool_exec.submit(run_index, i, item) for i, item in enumerate(items)]
            results = [f.result() for f in futures]
    else:
        for index, item in enumerate(items):
            if engine.stopping:
                break
            results.append(run_index(index, item))
            if results[-1][1] is not None and mode == "terminated":
                break
    failed = [(i, err) for i, err, _ in results if err is not None]
    outputs: list[Any] = []
    for _index, err, value in sorted(results, key=lambda r: r[0]):
        if err is None:
            outputs.append(value)
        elif mode == "continue-on-error":
            outputs.append(None)
    if ctx.data.get("flatten_output") and all(isinstance(o, list) for o in outputs):
        outputs = [x for o in outputs for x in o]
    process_data = {"iterator_length": len(items), "error_handle_mode": mode,
                    "is_parallel": parallel, "parallel_nums": workers if parallel else 1,
                    "failed_indexes": [i for i, _ in failed]}
    if engine.listener is not None:
        engine.emit("iteration_completed", {
            **_event_base(ctx), "inputs": {"iterator": items}, "outputs": {"output": outputs},
            "status": "failed" if failed and mode == "terminated" else "succeeded",
            "error": failed[0][1] if failed and mode == "terminated" else None,
            "steps": len(results), "metadata": {"iterator_length": len(items)},
        })
    if failed and mode == "terminated":
        index, err = failed[0]
        raise ctx.fail(f"iteration item {index} failed: {err}", code="iteration_failed")
    return NodeResult(outputs={"output": outputs}, inputs={"iterator_selector": items},
                      process_data=process_data)


def _loop_value(var: dict[str, Any], ctx: NodeContext) -> Any:
    raw = var.get("value")
    if var.get("value_type") == "variable" and isinstance(raw, list):
        return ctx.pool.get(raw)
    kind = str(var.get("var_type") or "string")
    if raw is None:
        return None
    if kind == "number":
        try:
            number = float(raw)
        except (TypeError, ValueError) as exc:
            raise ctx.fail(f"loop variable {var.get('label')!r} is not a number") from exc
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        return str(raw).lower() in ("true", "1")
    if kind.startswith("array") or kind == "object":
        if isinstance(raw, str):
            try:
                return json.loads(raw) if raw.strip() else ([] if kind.startswith("array")
                                                            else {})
            except json.JSONDecodeError as exc:
                raise ctx.fail(f"loop variable {var.get('label')!r} is not JSON") from exc
        return raw
    return str(raw)


def handle_loop(ctx: NodeContext) -> NodeResult:
    """Repeat the body until the break conditions hold, a loop-end node is reached, or
    ``loop_count`` rounds ran. The outputs are the loop variables."""
    engine = ctx.engine
    count = max(0, min(int(ctx.data.get("loop_count") or 10), MAX_LOOP_ROUNDS))
    labels: list[str] = []
    for var in ctx.data.get("loop_variables") or []:
        label = str(var.get("label") or "")
        if label:
            labels.append(label)
            ctx.pool.set(ctx.node.id, label, _loop_value(var, ctx))
    conditions = ctx.data.get("break_conditions") or []
    logical = str(ctx.data.get("logical_operator") or "and")
    resolve = condition_resolver(ctx.pool)

    def should_break() -> bool:
        if not conditions:
            return False
        return evaluate_conditions(conditions, logical, resolve)[0]

    start = engine.graph.container_start(ctx.node.id)
    if engine.listener is not None:
        engine.emit("loop_started", {**_event_base(ctx), "metadata": {"loop_length": count}})
    rounds = 0
    reason = "loop_count reached"
    if should_break():
        reason = "break conditions held before the first round"
    else:
        for index in range(count):
            if engine.stopping:
                reason = "stopped"
                break
            pool = ctx.pool.child()
            scope = replace(ctx.scope, loop_id=ctx.execution_id, loop_node_id=ctx.node.id,
                            loop_index=index, branches=())
            if engine.listener is not None:
                engine.emit("loop_next", {**_event_base(ctx), "index": index})
            outcome = engine.run_graph(start, ctx.node.id, pool, scope)
            rounds += 1
            if outcome.status == WorkflowRunStatus.FAILED:
                raise ctx.fail(f"loop round {index} failed: {outcome.error}",
                               code="loop_failed")
            if outcome.loop_break:
                reason = "loop-end node reached"
                break
            if should_break():
                reason = "break conditions held"
                break
    outputs = {label: ctx.pool.get([ctx.node.id, label]) for label in labels}
    if engine.listener is not None:
        engine.emit("loop_completed", {**_event_base(ctx), "outputs": outputs,
                                       "status": "succeeded", "steps": rounds})
    return NodeResult(outputs=outputs, process_data={"rounds": rounds, "reason": reason,
                                                     "loop_count": count})

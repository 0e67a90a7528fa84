"""Workflow engine overhead per node, with the offline model.

Scenarios (each run several times, median reported):

- ``chain-200-aggregator``: start -> 199 variable-aggregator nodes -> end. The nodes do almost
  nothing, so the time is the engine's own cost: scheduling, variable pool, recording a
  complete ``NodeExecution`` (UTC times, JSON-safe copies of inputs/outputs).
- ``chain-200-llm``: start -> 198 LLM nodes on the offline model -> end (engine + prompt
  rendering + offline model + ModelCall recording).
- ``iteration-100``: an iteration over 100 items whose body is one template-transform node
  (sequential), i.e. 100 sub-graph runs and ~200 recorded executions.
- ``chain-200-aggregator+events``: as the first, with a listener receiving every event (the
  streaming path builds Dify's event dicts).

Usage: ``.venv/bin/python bench/bench_engine.py [--runs 7] [--write docs/benchmarks.md]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opstrail.runtime.dsl.graph import parse_graph
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry
from opstrail.runtime.nodes.base import RunEnvironment
from opstrail.runtime.nodes.code import CodeSandbox
from opstrail.runtime.workflow.engine import WorkflowEngine

SECTION = "## Workflow engine"


def _node(node_id: str, node_type: str, parent: str | None = None, **data: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"id": node_id, "data": {"type": node_type, "title": node_id, **data}}
    if parent:
        raw["parentId"] = parent
    return raw


def _edge(source: str, target: str) -> dict[str, Any]:
    return {"id": f"{source}-{target}", "source": source, "target": target,
            "sourceHandle": "source"}


def chain(n: int, kind: str) -> dict[str, Any]:
    """start -> (n-2) nodes -> end."""
    nodes = [_node("start", "start", variables=[{"variable": "q", "label": "q",
                                                 "type": "text-input", "required": True}])]
    edges = []
    previous = "start"
    for i in range(n - 2):
        node_id = f"n{i}"
        if kind == "llm":
            nodes.append(_node(node_id, "llm", model={"provider": "opstrail", "name": "offline",
                                                      "mode": "chat"},
                               prompt_template=[{"role": "user",
                                                 "text": "Step " + str(i) + ": {{#start.q#}}"}]))
        else:
            source = ["start", "q"] if previous == "start" else [previous, "output"]
            nodes.append(_node(node_id, "variable-aggregator", variables=[source]))
        edges.append(_edge(previous, node_id))
        previous = node_id
    out = [previous, "text" if kind == "llm" else "output"]
    nodes.append(_node("end", "end", outputs=[{"variable": "out", "value_selector": out}]))
    edges.append(_edge(previous, "end"))
    return {"graph": {"nodes": nodes, "edges": edges}}


def iteration(items: int) -> dict[str, Any]:
    """An iteration over ``items`` strings with a one-node body."""
    nodes = [
        _node("start", "start", variables=[]),
        _node("data", "list-operator", variable=["sys", "files"]),
        _node("it", "iteration", iterator_selector=["data", "result"],
              output_selector=["body", "output"], start_node_id="itstart"),
        _node("itstart", "iteration-start", parent="it"),
        _node("body", "template-transform", parent="it", template="<{{ x }}>",
              variables=[{"variable": "x", "value_selector": ["it", "item"]}]),
        _node("end", "end", outputs=[{"variable": "out", "value_selector": ["it", "output"]}]),
    ]
    edges = [_edge("start", "data"), _edge("data", "it"), _edge("itstart", "body"),
             _edge("it", "end")]
    return {"graph": {"nodes": nodes, "edges": edges}, "_items": items}


def measure(wf: dict[str, Any], *, runs: int, listener: bool = False) -> tuple[float, int]:
    """Median wall time of ``runs`` runs (seconds) and the node executions per run."""
    items = wf.pop("_items", None)
    graph, _ = parse_graph(wf, mode="workflow")
    models = ModelRegistry(ModelOptions())
    system: dict[str, Any] = {"files": [f"item {i}" for i in range(items)] if items else []}
    times: list[float] = []
    executions = 0
    sink: Callable[[str, dict[str, Any]], None] | None = (lambda _n, _d: None) if listener \
        else None
    for _ in range(runs + 1):  # the first run warms up imports
        # A fresh environment per run, as the service builds it (no template cache carried).
        env = RunEnvironment(models=models, check_url=lambda u: u, code_sandbox=CodeSandbox())
        engine = WorkflowEngine(graph, env, workflow_run_id=str(uuid.uuid4()), listener=sink)
        started = time.perf_counter()
        outcome = engine.run(inputs={"q": "hello"}, system=system)
        times.append(time.perf_counter() - started)
        assert outcome.status.value == "succeeded", outcome.error
        executions = len(outcome.node_executions)
    return statistics.median(times[1:]), executions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, default=None,
                        help="update the 'Workflow engine' section of this markdown file")
    args = parser.parse_args()
    rows = []
    for name, wf, listener in [
        ("chain-200-aggregator", chain(200, "aggregator"), False),
        ("chain-200-aggregator+events", chain(200, "aggregator"), True),
        ("chain-200-llm (offline model)", chain(200, "llm"), False),
        ("iteration-100 (template body)", iteration(100), False),
    ]:
        median, executions = measure(wf, runs=args.runs, listener=listener)
        rows.append((name, executions, median * 1000, median * 1000 / executions))
        print(f"{name:34s} {executions:4d} executions  {median * 1000:8.1f} ms  "
              f"{median * 1e6 / executions:7.1f} us/node")
    if args.write:
        write_section(args.write, rows, args.runs)


def write_section(path: Path, rows: list[tuple[str, int, float, float]], runs: int) -> None:
    """Replace (or append) the 'Workflow engine' section of ``path``."""
    machine = (f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, "
               f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    lines = [
        SECTION,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine} "
        f"(shared 2-core machine) with `bench/bench_engine.py --runs {runs}`: median of "
        f"{runs} runs after one warm-up, engine in-process, no database. Target: at most 1 ms "
        "of engine overhead per node.",
        "",
        "| scenario | node executions | median run | per node |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {executions} | {total:.1f} ms | {per:.3f} ms |"
          for name, executions, total, per in rows],
        "",
        "The aggregator chain is the engine's own overhead (scheduling, variable pool, a "
        "complete NodeExecution per node). The LLM chain adds prompt rendering, the offline "
        "model and ModelCall recording. The iteration counts the iteration-start and body "
        "executions of every item. Not included: the run's database writes (one final "
        "transaction with the run row, every node row and the trace record). On this shared "
        "machine the figures vary by 2-3x with the load of other jobs.",
        "",
    ]
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if SECTION in text:
        before, rest = text.split(SECTION, 1)
        after = rest.split("\n## ", 1)
        tail = "\n## " + after[1] if len(after) > 1 else ""
        text = before + "\n".join(lines) + tail
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

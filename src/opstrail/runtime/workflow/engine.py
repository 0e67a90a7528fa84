"""The graph engine: runs a checked ``Graph`` node by node and records every execution.

Scheduling follows edge states, as Dify's queue-based engine does: when a node finishes, each
outgoing edge is taken (its source handle matches what the node chose) or skipped. A node
runs once all its incoming edges are decided and at least one was taken; when all were
skipped it is skipped and skips its own outgoing edges. So exclusive branches merge without
waiting and parallel branches join after all of them finished.

Several ready nodes run concurrently in threads (parallel branches); a single ready node runs
inline, which keeps the per-node overhead small. Each branch occurrence gets its own
``parallel_id``. Every execution is recorded by the ``RunRecorder`` with times measured at the
node; nothing is reconstructed later.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Final

from opstrail.errors import OpstrailError, RuntimeFailure, ValidationError
from opstrail.runtime.dsl.graph import Graph, NodeSpec
from opstrail.runtime.nodes.base import NodeContext, NodeResult, RunEnvironment
from opstrail.runtime.workflow.recorder import RunRecorder, StartedNode
from opstrail.runtime.workflow.variables import VariablePool
from opstrail.tracing.info import NodeExecution, NodeStatus, WorkflowRunStatus

MAX_PARALLEL_BRANCHES: Final = 8
MAX_RETRY_INTERVAL_SECONDS: Final = 10.0
Listener = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class ExecScope:
    """Where an execution happens: enclosing iteration/loop and parallel branch stack."""

    iteration_id: str | None = None
    iteration_node_id: str | None = None
    iteration_index: int | None = None
    loop_id: str | None = None
    loop_node_id: str | None = None
    loop_index: int | None = None
    branches: tuple[tuple[str, str], ...] = ()

    @property
    def parallel_id(self) -> str | None:
        return self.branches[-1][0] if self.branches else None

    @property
    def parallel_start_node_id(self) -> str | None:
        return self.branches[-1][1] if self.branches else None


@dataclass
class GraphOutcome:
    """How one (sub)graph ended. ``error`` is the failing node's own error."""

    status: WorkflowRunStatus = WorkflowRunStatus.SUCCEEDED
    error: str | None = None
    failed_node_id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    loop_break: bool = False


@dataclass
class EngineOutcome:
    """A finished run as the engine saw it."""

    status: WorkflowRunStatus
    outputs: dict[str, Any]
    error: str | None
    node_executions: tuple[NodeExecution, ...]
    answer: str
    exceptions_count: int


class WorkflowEngine:
    """Runs one workflow run. Build one per run; ``stop`` may be called from another thread."""

    def __init__(
        self,
        graph: Graph,
        env: RunEnvironment,
        *,
        workflow_run_id: str,
        listener: Listener | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        from opstrail.runtime.nodes.registry import handler_for

        self.graph = graph
        self.env = env
        self.workflow_run_id = workflow_run_id
        self.listener = listener
        self.recorder = RunRecorder()
        self._handler_for = handler_for
        self._stop = threading.Event()
        # Set by a stop request from outside (the server's task registry).
        self._external_stop = stop_event
        self._stop_status = WorkflowRunStatus.STOPPED
        self._stop_reason = "stopped by the user"
        self._answer_parts: list[str] = []
        self._answer_lock = threading.Lock()
        self.pool = VariablePool()
        self._member_sets: dict[str | None, frozenset[str]] = {}
        self._stream_targets = _stream_targets(graph)
        self._streamed: set[str] = set()

    # -- control -------------------------------------------------------------------------

    def stop(self, reason: str = "stopped by the user", *,
             status: WorkflowRunStatus = WorkflowRunStatus.STOPPED) -> None:
        """Ask the run to stop: no new node starts; running nodes are recorded as stopped."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop_status = status
            self._stop.set()

    @property
    def stopping(self) -> bool:
        if self._stop.is_set():
            return True
        if self._external_stop is not None and self._external_stop.is_set():
            self.stop("stopped by the user")
            return True
        return False

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Pass an event to the listener (SSE), if any."""
        if self.listener is not None:
            self.listener(event, data)

    def append_answer(self, text: str, node_id: str) -> None:
        """Add a chatflow answer part and stream it (unless its LLM already streamed it)."""
        with self._answer_lock:
            self._answer_parts.append(text)
            streamed = node_id in self._streamed
        if self.listener is not None and text and not streamed:
            self.emit("text_chunk", {"text": text, "from_variable_selector": [node_id, "answer"]})

    def was_streamed(self, node_id: str) -> bool:
        """Whether an LLM already streamed this answer/end node's text token by token."""
        with self._answer_lock:
            return node_id in self._streamed

    def delta_sink(self, llm_node_id: str) -> Callable[[str], None] | None:
        """Where an LLM node sends its tokens as they come, or ``None``.

        Tokens are streamed (``text_chunk``) only when the LLM's sole successor is an answer
        node whose text is exactly this LLM's text, or an end node whose one output is it,
        at the top level: then the streamed text is certain to be what that node outputs.
        """
        if self.listener is None:
            return None
        target = self._stream_targets.get(llm_node_id)
        if target is None:
            return None
        with self._answer_lock:
            self._streamed.add(target)
        selector = [llm_node_id, "text"]

        def sink(delta: str) -> None:
            if delta:
                self.emit("text_chunk", {"text": delta, "from_variable_selector": selector})

        return sink

    @property
    def answer(self) -> str:
        with self._answer_lock:
            return "".join(self._answer_parts)

    # -- running -------------------------------------------------------------------------

    def run(
        self,
        *,
        inputs: Mapping[str, Any],
        system: Mapping[str, Any],
        conversation: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> EngineOutcome:
        """Run the graph to its end (or its first unhandled failure, or a stop)."""
        for key, value in system.items():
            self.pool.set("sys", key, value)
        for decl in self.graph.environment_variables:
            value = (environment or {}).get(decl.name, decl.value)
            self.pool.set("env", decl.name, value)
        for decl in self.graph.conversation_variables:
            value = (conversation or {}).get(decl.name, decl.value)
            self.pool.set("conversation", decl.name, value)
        self.pool.set_outputs("__inputs__", dict(inputs))
        outcome = self.run_graph(self.graph.root_id, None, self.pool, ExecScope())
        return self.finish(outcome)

    def finish(self, outcome: GraphOutcome | None) -> EngineOutcome:
        """Close the recorder and summarise the run; ``None`` means the run was abandoned
        (run timeout) and ends with the stop's status and reason."""
        if outcome is None:
            executions = self.recorder.close(self._stop_reason)
            status: WorkflowRunStatus = self._stop_status
            error: str | None = self._stop_reason
            outputs: dict[str, Any] = {}
        else:
            reason = (self._stop_reason if self.stopping
                      else "the run ended before this node finished")
            executions = self.recorder.close(reason)
            status, error, outputs = outcome.status, outcome.error, outcome.outputs
        exceptions = sum(1 for e in executions if e.status == NodeStatus.EXCEPTION)
        if status == WorkflowRunStatus.SUCCEEDED and exceptions:
            status = WorkflowRunStatus.PARTIAL_SUCCEEDED
        return EngineOutcome(
            status=status,
            outputs=outputs,
            error=error,
            node_executions=executions,
            answer=self.answer,
            exceptions_count=exceptions,
        )

    def run_graph(
        self,
        start_id: str,
        parent_id: str | None,
        pool: VariablePool,
        scope: ExecScope,
    ) -> GraphOutcome:
        """Run the (sub)graph of ``parent_id`` (``None``: top level) from ``start_id``."""
        graph = self.graph
        member = self._members(parent_id)
        edge_state: dict[str, bool] = {}
        reachable = _reachable(graph, start_id, member)
        for node_id in member - reachable:
            for edge in graph.out_edges.get(node_id, ()):
                edge_state[edge.id] = False
        outcome = GraphOutcome()
        scopes: dict[str, ExecScope] = {}
        ready: list[tuple[str, str | None, ExecScope]] = [(start_id, None, scope)]
        running: dict[Future[tuple[StartedNode, NodeResult | None, BaseException | None]],
                      str] = {}
        executor: ThreadPoolExecutor | None = None
        done_nodes: set[str] = set()
        try:
            while ready or running:
                if self.stopping:
                    ready.clear()
                    if not running:
                        break
                if outcome.status == WorkflowRunStatus.FAILED or outcome.loop_break:
                    ready.clear()
                if ready and not running and len(ready) == 1:
                    node_id, predecessor, node_scope = ready.pop()
                    started, result, error = self._execute(
                        graph.nodes[node_id], predecessor, pool, node_scope)
                    finished = [(started, result, error)]
                elif ready:
                    if executor is None:
                        executor = ThreadPoolExecutor(
                            max_workers=MAX_PARALLEL_BRANCHES,
                            thread_name_prefix=f"wf-{self.workflow_run_id[:8]}",
                        )
                    for node_id, predecessor, node_scope in ready:
                        future = executor.submit(self._execute, graph.nodes[node_id],
                                                 predecessor, pool, node_scope)
                        running[future] = node_id
                    ready.clear()
                    continue
                else:
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED, timeout=0.5)
                    finished = []
                    for future in done:
                        running.pop(future)
                        finished.append(future.result())
                for started, result, error in finished:
                    done_nodes.add(started.node.id)
                    scopes[started.node.id] = started.scope
                    handle = self._settle(started, result, error, pool, outcome)
                    if handle is None:
                        continue
                    ready.extend(self._advance(started, handle, edge_state, member, scopes,
                                               done_nodes))
        finally:
            if executor is not None:
                executor.shutdown(wait=not self.stopping, cancel_futures=True)
        if self.stopping and outcome.status == WorkflowRunStatus.SUCCEEDED:
            outcome.status = self._stop_status
            outcome.error = self._stop_reason
        return outcome

    def _members(self, parent_id: str | None) -> frozenset[str]:
        """The node ids of a (sub)graph, computed once per run."""
        members = self._member_sets.get(parent_id)
        if members is None:
            members = frozenset(n.id for n in self.graph.nodes.values()
                                if n.parent_id == parent_id)
            self._member_sets[parent_id] = members
        return members

    def _advance(
        self,
        started: StartedNode,
        handle: str,
        edge_state: dict[str, bool],
        member: frozenset[str],
        scopes: dict[str, ExecScope],
        done_nodes: set[str],
    ) -> list[tuple[str, str | None, ExecScope]]:
        """Decide the outgoing edges of a finished node; return the nodes now ready."""
        graph = self.graph
        handles = {handle}
        if handle == "source":
            handles.add("success-branch")
        own_edges = graph.out_edges.get(started.node.id, ())
        fan_out = len({e.target for e in own_edges if e.source_handle in handles}) > 1
        ready: list[tuple[str, str | None, ExecScope]] = []
        pending: list[tuple[str, set[str]]] = [(started.node.id, handles)]
        while pending:
            source, chosen = pending.pop()
            out = graph.out_edges.get(source, ())
            for edge in out:
                edge_state[edge.id] = edge.source_handle in chosen
            for target in dict.fromkeys(e.target for e in out):
                if target not in member or target in done_nodes:
                    continue
                incoming = graph.in_edges.get(target, ())
                if any(e.id not in edge_state for e in incoming):
                    continue
                done_nodes.add(target)
                taken_sources = [e.source for e in incoming if edge_state[e.id]]
                if not taken_sources:
                    pending.append((target, set()))  # skipped: skip its edges too
                    continue
                stacks = [scopes[s].branches for s in taken_sources if s in scopes]
                if len(stacks) > 1:
                    branches = _common_prefix(stacks)
                else:
                    branches = stacks[0] if stacks else started.scope.branches
                if fan_out and source == started.node.id and len(taken_sources) == 1:
                    branches = (*branches, (str(uuid.uuid4()), target))
                ready.append((target, taken_sources[-1],
                              replace(started.scope, branches=branches)))
        return ready

    def _execute(
        self, node: NodeSpec, predecessor: str | None, pool: VariablePool, scope: ExecScope
    ) -> tuple[StartedNode, NodeResult | None, BaseException | None]:
        """Run one node with its retries; never raises (the result carries the error)."""
        started = self.recorder.start(node, predecessor, scope)
        if self.listener is not None:
            self.emit("node_started", started.started_event(self))
        handler = self._handler_for(node.type)
        retry = node.data.get("retry_config") or {}
        max_retries = int(retry.get("max_retries") or 0) if retry.get("retry_enabled") else 0
        interval = min(float(retry.get("retry_interval") or 0) / 1000.0,
                       MAX_RETRY_INTERVAL_SECONDS)
        ctx = NodeContext(node=node, pool=pool, env=self.env, engine=self, scope=scope,
                          execution_id=started.id)
        attempt = 0
        while True:
            try:
                return started, handler(ctx), None
            except OpstrailError as exc:
                error: BaseException = exc
            except Exception as exc:
                error = RuntimeFailure(f"{type(exc).__name__}: {exc}", code="node_crashed")
            if attempt >= max_retries or self.stopping:
                return started, None, error
            attempt += 1
            started.retry_count = attempt
            if self.listener is not None:
                self.emit("node_retry", {**started.started_event(self),
                                         "error": str(error), "retry_index": attempt})
            if interval:
                self._stop.wait(interval)

    def _settle(
        self,
        started: StartedNode,
        result: NodeResult | None,
        error: BaseException | None,
        pool: VariablePool,
        outcome: GraphOutcome,
    ) -> str | None:
        """Record a finished execution, apply its error strategy; return the chosen handle
        (``None`` when the run must not go on from this node)."""
        node = started.node
        strategy = node.data.get("error_strategy")
        if strategy not in ("fail-branch", "default-value"):
            strategy = None
        if error is not None and isinstance(error, _LoopBreak):
            result, error = NodeResult(outputs={}), None
            outcome.loop_break = True
        if error is None and result is not None:
            pool.set_outputs(node.id, result.outputs)
            execution = self.recorder.finish(started, NodeStatus.SUCCEEDED, None, result,
                                             error_strategy=strategy)
            self._emit_finished(started, execution)
            if node.type == "end":
                outcome.outputs.update(result.outputs)
            return result.handle
        message = str(error) or type(error).__name__
        if self.stopping:
            execution = self.recorder.finish(started, NodeStatus.STOPPED, message,
                                             result or NodeResult(outputs={}))
            self._emit_finished(started, execution)
            return None
        error_type = getattr(error, "code", type(error).__name__)
        partial = getattr(error, "partial", None) or NodeResult(outputs={})
        if strategy is not None:
            outputs: dict[str, Any] = {"error_message": message, "error_type": error_type}
            handle = "fail-branch"
            if strategy == "default-value":
                handle = "source"
                for item in node.data.get("default_value") or []:
                    if isinstance(item, Mapping) and item.get("key"):
                        outputs[str(item["key"])] = item.get("value")
            partial.outputs = {**partial.outputs, **outputs}
            pool.set_outputs(node.id, partial.outputs)
            execution = self.recorder.finish(started, NodeStatus.EXCEPTION, message, partial,
                                             error_strategy=strategy)
            self._emit_finished(started, execution)
            return handle
        execution = self.recorder.finish(started, NodeStatus.FAILED, message, partial)
        self._emit_finished(started, execution)
        if outcome.status != WorkflowRunStatus.FAILED:
            outcome.status = WorkflowRunStatus.FAILED
            outcome.error = f"node {node.title or node.id} failed: {message}"
            outcome.failed_node_id = node.id
        return None

    def _emit_finished(self, started: StartedNode, execution: NodeExecution | None) -> None:
        if self.listener is not None and execution is not None:
            self.emit("node_finished", started.finished_event(self, execution))


class _LoopBreak(OpstrailError):
    """Raised by a loop-end node: the current loop round ends the loop."""

    code = "loop_break"


def loop_break() -> OpstrailError:
    """The signal a loop-end node raises to end its loop."""
    return _LoopBreak("loop-end reached")


def _stream_targets(graph: Graph) -> dict[str, str]:
    """LLM node id -> the answer/end node that outputs exactly its text right after it."""
    targets: dict[str, str] = {}
    for node in graph.nodes.values():
        if node.type != "llm" or node.parent_id is not None:
            continue
        out = graph.out_edges.get(node.id, ())
        successors = {e.target for e in out}
        if len(successors) != 1 or any(e.source_handle != "source" for e in out):
            continue
        target = graph.nodes[next(iter(successors))]
        if len(graph.in_edges.get(target.id, ())) != 1:
            continue
        if target.type == "answer":
            text = str(target.data.get("answer") or "").strip()
            if text == "{{#" + node.id + ".text#}}":
                targets[node.id] = target.id
        elif target.type == "end":
            outputs = [o for o in target.data.get("outputs") or [] if isinstance(o, Mapping)]
            if len(outputs) == 1 and list(outputs[0].get("value_selector") or []) == [
                    node.id, "text"]:
                targets[node.id] = target.id
    return targets


def _reachable(graph: Graph, start_id: str, member: frozenset[str]) -> set[str]:
    seen = {start_id}
    stack = [start_id]
    while stack:
        current = stack.pop()
        for edge in graph.out_edges.get(current, ()):
            if edge.target in member and edge.target not in seen:
                seen.add(edge.target)
                stack.append(edge.target)
    return seen


def _common_prefix(stacks: list[tuple[tuple[str, str], ...]]) -> tuple[tuple[str, str], ...]:
    prefix: list[tuple[str, str]] = []
    for items in zip(*stacks, strict=False):
        if all(item == items[0] for item in items):
            prefix.append(items[0])
        else:
            break
    return tuple(prefix)


def validate_inputs(graph: Graph, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Check the run inputs against the start node's variables and convert numbers.

    Raises:
        ValidationError: a required input is missing or an input has the wrong form.
    """
    checked: dict[str, Any] = {}
    for var in graph.start_variables:
        value = inputs.get(var.variable)
        if value is None or value == "":
            if var.required:
                raise ValidationError(f"{var.label or var.variable} is required in input form",
                                      code="invalid_param")
            checked[var.variable] = var.default if var.default not in (None, "") else None
            continue
        if var.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValidationError(f"{var.variable} must be a number", code="invalid_param")
            if isinstance(value, str):
                try:
                    value = float(value) if "." in value else int(value)
                except ValueError as exc:
                    raise ValidationError(f"{var.variable} must be a number",
                                          code="invalid_param") from exc
            if isinstance(value, float) and not math.isfinite(value):
                # "1.0e999" parses to inf: no store or trace can keep it.
                raise ValidationError(f"{var.variable} must be a finite number",
                                      code="invalid_param")
        elif var.type in ("text-input", "paragraph", "select"):
            if not isinstance(value, str):
                raise ValidationError(f"{var.variable} must be a string", code="invalid_param")
            if var.type == "select" and var.options and value not in var.options:
                raise ValidationError(
                    f"{var.variable} must be one of {', '.join(var.options)}",
                    code="invalid_param",
                )
            if var.max_length and var.type == "text-input" and len(value) > var.max_length:
                raise ValidationError(
                    f"{var.variable} must be at most {var.max_length} characters",
                    code="invalid_param",
                )
        checked[var.variable] = value
    return checked


def run_with_timeout(
    engine: WorkflowEngine,
    *,
    timeout: float,
    inputs: Mapping[str, Any],
    system: Mapping[str, Any],
    conversation: Mapping[str, Any] | None = None,
) -> EngineOutcome:
    """Run the engine in a thread and give up after ``timeout`` seconds: the run then fails
    with a timeout error and nodes still running are recorded as stopped. Never hangs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["outcome"] = engine.run(inputs=inputs, system=system, conversation=conversation)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"wf-run-{engine.workflow_run_id[:8]}",
                              daemon=True)
    deadline = time.monotonic() + timeout
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        engine.stop(f"the run exceeded its time limit of {timeout:g} seconds",
                    status=WorkflowRunStatus.FAILED)
        thread.join(1.0)
        if thread.is_alive() or "outcome" not in box:
            return engine.finish(None)
    if "error" in box:
        error = box["error"]
        if isinstance(error, OpstrailError):
            raise error
        raise RuntimeFailure(f"the workflow engine crashed: {error!r}") from error
    outcome: EngineOutcome = box["outcome"]
    return outcome

"""Records every node execution of a run as it happens.

``start`` stamps the start time at the node and gives the execution its id and index;
``finish`` stamps the end and builds the complete ``NodeExecution``. ``close`` ends the run:
executions still running (a stop or a run timeout) are recorded as stopped with the reason,
so the run's trace never misses a node. After ``close`` late finishes are ignored.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opstrail.runtime.dsl.graph import NodeSpec
from opstrail.tracing.info import NodeExecution, NodeStatus
from opstrail.tracing.values import JsonValue

if TYPE_CHECKING:
    from opstrail.runtime.nodes.base import NodeResult
    from opstrail.runtime.workflow.engine import ExecScope, WorkflowEngine


@dataclass
class StartedNode:
    """An execution in progress."""

    id: str
    node: NodeSpec
    index: int
    predecessor: str | None
    scope: ExecScope
    start_time: datetime
    started_perf: float
    retry_count: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def started_event(self, engine: WorkflowEngine) -> dict[str, Any]:
        """The ``node_started`` event data, as Dify's service API sends it."""
        return {
            "id": self.id,
            "node_id": self.node.id,
            "node_type": self.node.type,
            "title": self.node.title,
            "index": self.index,
            "predecessor_node_id": self.predecessor,
            "inputs": None,
            "created_at": int(self.start_time.timestamp()),
            "extras": {},
            "parallel_id": self.scope.parallel_id,
            "parallel_start_node_id": self.scope.parallel_start_node_id,
            "iteration_id": self.scope.iteration_node_id,
            "iteration_index": self.scope.iteration_index,
            "loop_id": self.scope.loop_node_id,
            "loop_index": self.scope.loop_index,
        }

    def finished_event(self, engine: WorkflowEngine, execution: NodeExecution) -> dict[str, Any]:
        """The ``node_finished`` event data."""
        return {
            **self.started_event(engine),
            "inputs": dict(execution.inputs),
            "process_data": dict(execution.process_data),
            "outputs": dict(execution.outputs),
            "status": execution.status.value,
            "error": execution.error,
            "elapsed_time": execution.elapsed_time,
            "execution_metadata": {
                "total_tokens": execution.total_tokens,
                "total_price": str(execution.total_price)
                if execution.total_price is not None else None,
                "currency": execution.currency,
            },
            "finished_at": int(execution.end_time.timestamp()),
        }


class RunRecorder:
    """Collects the node executions of one run (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index = 0
        self._running: dict[str, StartedNode] = {}
        self._done: list[NodeExecution] = []
        self._closed: tuple[NodeExecution, ...] | None = None

    def start(self, node: NodeSpec, predecessor: str | None, scope: ExecScope) -> StartedNode:
        """Open an execution: id, index (order of start, from 1) and start time."""
        with self._lock:
            self._index += 1
            started = StartedNode(
                id=str(uuid.uuid4()),
                node=node,
                index=self._index,
                predecessor=predecessor,
                scope=scope,
                start_time=datetime.now(UTC),
                started_perf=time.perf_counter(),
            )
            if self._closed is None:
                self._running[started.id] = started
            return started

    def finish(
        self,
        started: StartedNode,
        status: NodeStatus,
        error: str | None,
        result: NodeResult,
        *,
        error_strategy: str | None = None,
    ) -> NodeExecution | None:
        """Close an execution; ``None`` when the run was already closed."""
        end_time = datetime.now(UTC)
        elapsed = time.perf_counter() - started.started_perf
        execution = _build(started, status, error, result, end_time, elapsed, error_strategy)
        with self._lock:
            if self._closed is not None:
                return None
            self._running.pop(started.id, None)
            self._done.append(execution)
        return execution

    def close(self, reason: str) -> tuple[NodeExecution, ...]:
        """End the run: running executions become ``stopped`` with ``reason``. Returns
        every execution in start order; later calls return the same tuple."""
        from opstrail.runtime.nodes.base import NodeResult

        with self._lock:
            if self._closed is not None:
                return self._closed
            now = datetime.now(UTC)
            perf = time.perf_counter()
            for started in self._running.values():
                self._done.append(_build(started, NodeStatus.STOPPED, reason,
                                         NodeResult(outputs={}), now,
                                         perf - started.started_perf, None))
            self._running.clear()
            self._closed = tuple(sorted(self._done, key=lambda e: e.index))
            return self._closed

    def executions(self) -> tuple[NodeExecution, ...]:
        """The executions finished so far, in start order."""
        with self._lock:
            return tuple(sorted(self._done, key=lambda e: e.index))


def _build(
    started: StartedNode,
    status: NodeStatus,
    error: str | None,
    result: NodeResult,
    end_time: datetime,
    elapsed: float,
    error_strategy: str | None,
) -> NodeExecution:
    calls = tuple(result.model_calls)
    first = calls[0] if calls else None
    prices = [c.price for c in calls if c.price is not None]
    total_price: Decimal | None = sum(prices, Decimal(0)) if prices else None
    currency = first.currency if first is not None else None
    return NodeExecution(
        id=started.id,
        node_id=started.node.id,
        node_type=started.node.type,
        title=started.node.title,
        index=started.index,
        predecessor_node_id=started.predecessor,
        status=status,
        error=error,
        inputs=_json_mapping(result.inputs),
        process_data=_json_mapping(result.process_data),
        outputs=_json_mapping(result.outputs),
        start_time=started.start_time,
        end_time=end_time,
        elapsed_time=elapsed,
        model_provider=first.provider if first else None,
        model_name=first.model if first else None,
        model_parameters=dict(first.model_parameters) if first else None,
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
        total_tokens=sum(c.total_tokens for c in calls),
        total_price=total_price,
        currency=currency,
        time_to_first_token=first.time_to_first_token if first else None,
        iteration_id=started.scope.iteration_id,
        iteration_index=started.scope.iteration_index,
        loop_id=started.scope.loop_id,
        loop_index=started.scope.loop_index,
        parallel_id=started.scope.parallel_id,
        parallel_start_node_id=started.scope.parallel_start_node_id,
        model_calls=calls,
        error_strategy=error_strategy,  # type: ignore[arg-type]
        retry_count=started.retry_count,
        documents=tuple(result.documents),
        tool_name=result.tool_name,
    )


def _json(value: Any) -> JsonValue:
    """A JSON-safe copy (tuples become lists, unknown objects their text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)


def _json_mapping(value: dict[str, Any]) -> dict[str, JsonValue]:
    return {str(k): _json(v) for k, v in value.items()}

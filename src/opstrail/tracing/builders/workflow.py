"""Workflow and chatflow runs.

Tree (decisions.md, "Tree shapes"): a root ``chain`` named after the trace, with the run's
inputs and outputs (a chatflow run: the query in, the answer out), level and status message;
one observation per node execution under it (see ``nodes``). Nodes inside an iteration or a
loop sit under a ``chain`` wrapper per index, itself under the iteration/loop node's
observation; the nodes of a parallel branch sit under a ``chain`` wrapper per branch, under
the branch's normal parent. A chatflow's moderation checks and suggested questions sit under
the root.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Final

from opstrail import ids
from opstrail.errors import TraceModelError
from opstrail.tracing.builders.common import (
    check_tree,
    context_metadata,
    observation,
    plain,
    resolve_trace_id,
    total_price_metadata,
    unique,
)
from opstrail.tracing.builders.moderation import moderation_observation
from opstrail.tracing.builders.nodes import RETRIEVAL_NODE, TOOL_NODE, node_observations
from opstrail.tracing.builders.options import BuildOptions
from opstrail.tracing.builders.suggested import suggested_observation
from opstrail.tracing.info import ConversationMode, NodeExecution, WorkflowTraceInfo
from opstrail.tracing.levels import Verdict, run_verdict, worst
from opstrail.tracing.tree import Observation, ObservationType, Trace, new_trace
from opstrail.tracing.values import JsonValue


def workflow_trace_name(workflow_run_id: str, options: BuildOptions) -> str:
    """``workflow_<workflow_run_id>``, or ``workflow`` with low-cardinality names."""
    return "workflow" if options.low_cardinality_names else f"workflow_{workflow_run_id}"


def is_chatflow(info: WorkflowTraceInfo) -> bool:
    """True for an advanced-chat run (it answers a message of a conversation)."""
    return info.conversation_mode is ConversationMode.ADVANCED_CHAT or info.message_id is not None


def workflow_tags(info: WorkflowTraceInfo) -> tuple[str, ...]:
    """``workflow`` (chatflow: ``workflow``, ``message``, ``advanced-chat``), plus the tag of
    every kind the run holds: retrieval nodes, tool nodes (and each tool's name),
    moderation, suggested questions."""
    tags = ["workflow"]
    if is_chatflow(info):
        tags += ["message", ConversationMode.ADVANCED_CHAT.value]
    if info.moderations:
        tags.append("moderation")
    if any(node.node_type == RETRIEVAL_NODE for node in info.node_executions):
        tags.append("dataset_retrieval")
    tools = [node for node in info.node_executions if node.node_type == TOOL_NODE]
    if tools:
        tags.append("tool")
        tags.extend(node.tool_name or node.title for node in tools)
    if info.suggested_question is not None:
        tags.append("suggested_question")
    return unique(tags)


def workflow_metadata(info: WorkflowTraceInfo) -> dict[str, JsonValue]:
    """Trace metadata: the seed's Metadata list for a workflow, the run context and totals."""
    # ``_value_`` is what an enum's ``.value`` returns, minus the property call (hot path).
    meta: dict[str, JsonValue] = {
        **context_metadata(info.context),
        "workflow_id": info.workflow_id,
        "conversation_id": info.conversation_id,
        "workflow_run_id": info.workflow_run_id,
        "tenant_id": info.tenant_id,
        "elapsed_time": info.elapsed_time,
        "status": info.status._value_,
        "version": info.version,
        "total_tokens": info.total_tokens,
        "file_list": list(info.file_list),
        "triggered_from": info.triggered_from,
        "workflow_app_log_id": info.workflow_app_log_id,
        "conversation_mode": info.conversation_mode._value_,
        "exceptions_count": info.exceptions_count,
    }
    if info.message_id is not None:
        meta["message_id"] = info.message_id
    meta.update(total_price_metadata(info.total_price, info.currency))
    return meta


@dataclass(slots=True)
class _Wrapper:
    """A synthetic chain (iteration/loop index, parallel branch) being collected."""

    seed: str
    id: str  # ids.observation_id(seed), made once
    parent_id: str
    name: str
    metadata: dict[str, JsonValue]
    input: JsonValue = None
    output: JsonValue = None
    members: list[Observation] = field(default_factory=list)


def _indexed(value: Mapping[str, JsonValue], index: int) -> JsonValue:
    # The index-th element of the first list in ``value`` (an iteration's items or outputs).
    for item in value.values():
        if isinstance(item, list) and 0 <= index < len(item):
            return item[index]
    return None


class _Placement:
    """Decides each node's parent, creating wrappers as nodes reference them."""

    def __init__(self, info: WorkflowTraceInfo, root_id: str) -> None:
        self._run_id = info.workflow_run_id
        self._root_id = root_id
        self._by_id: dict[str, NodeExecution] = {}
        for node in info.node_executions:
            if node.id in self._by_id:
                raise TraceModelError(f"node execution {node.id} appears twice in the run")
            self._by_id[node.id] = node
        self.wrappers: dict[str, _Wrapper] = {}
        self.by_obs_id: dict[str, _Wrapper] = {}
        self.warnings: dict[str, str] = {}

    def _register(self, wrapper: _Wrapper) -> _Wrapper:
        # The first node that references a wrapper creates it (callers look it up in
        # ``wrappers`` first); later ones join it.
        self.wrappers[wrapper.seed] = wrapper
        self.by_obs_id[wrapper.id] = wrapper
        return wrapper

    def _container(self, node: NodeExecution) -> tuple[NodeExecution | None, str]:
        # Innermost iteration or loop holding the node, and the id of its index wrapper.
        if node.iteration_id is None and node.loop_id is None:
            return None, self._root_id  # most nodes: straight under the root
        for kind, container_id, index in (
            ("iteration", node.iteration_id, node.iteration_index),
            ("loop", node.loop_id, node.loop_index),
        ):
            if container_id is None:
                continue
            container = self._by_id.get(container_id)
            if container is None or index is None:
                self.warnings[node.id] = (
                    f"{kind} node execution {container_id} (index {index}) is not in the run; "
                    "placed under the run's root"
                )
                return None, self._root_id
            seed = (ids.seed_iteration if kind == "iteration" else ids.seed_loop)(
                container_id, index
            )
            wrapper = self.wrappers.get(seed)
            if wrapper is None:
                wrapper = self._register(
                    _Wrapper(
                        seed=seed,
                        id=ids.observation_id(seed),
                        parent_id=ids.observation_id(ids.seed_node(container.id)),
                        name=f"{kind}_{index}",
                        metadata={
                            f"{kind}_id": container.id,
                            f"{kind}_index": index,
                            "node_name": container.title,
                        },
                        input=_indexed(container.inputs, index),
                        output=_indexed(container.outputs, index),
                    )
                )
            return container, wrapper.id
        return None, self._root_id

    def parent_of(self, node: NodeExecution) -> str:
        """The observation id of the node's parent, creating its wrappers on the way."""
        container, parent_id = self._container(node)
        inherited = container.parallel_id if container is not None else None
        if node.parallel_id is None or node.parallel_id == inherited:
            return parent_id
        seed = ids.seed_parallel(self._run_id, node.parallel_id)
        existing = self.wrappers.get(seed)
        if existing is not None and existing.parent_id != parent_id:
            # The same branch id under two parents breaks the info contract (one id per
            # branch occurrence); keep both trees valid with a distinct, stable seed.
            seed = f"{seed}@{parent_id}"
        wrapper = self.wrappers.get(seed)
        if wrapper is None:
            wrapper = self._register(
                _Wrapper(
                    seed=seed,
                    id=ids.observation_id(seed),
                    parent_id=parent_id,
                    name=f"parallel_{node.title}",
                    metadata={
                        "parallel_id": node.parallel_id,
                        "parallel_start_node_id": node.parallel_start_node_id,
                    },
                )
            )
        return wrapper.id


def _wrapper_observation(wrapper: _Wrapper, trace_id: str) -> Observation:
    members = wrapper.members
    level = worst(m.level for m in members)
    message = next(
        (f"{m.name}: {m.status_message}" for m in members if m.level is level and m.status_message),
        None,
    )
    return observation(
        trace_id=trace_id,
        seed=wrapper.seed,
        type_=ObservationType.CHAIN,
        name=wrapper.name,
        start=min(m.start_time for m in members),
        end=max(m.end_time for m in members),
        parent_id=wrapper.parent_id,
        input_=wrapper.input,
        output=wrapper.output,
        metadata=wrapper.metadata,
        verdict=Verdict(level, message),
        seed_id=wrapper.id,
    )


_START_TIME: Final = attrgetter("start_time")


def _preorder(observations: list[Observation]) -> tuple[Observation, ...]:
    # Root first, then each subtree depth-first, children by start time (stable).
    children: dict[str | None, list[Observation]] = {}
    for obs in observations:
        children.setdefault(obs.parent_id, []).append(obs)
    ordered: list[Observation] = []
    stack = sorted(children.get(None, []), key=_START_TIME, reverse=True)
    while stack:
        current = stack.pop()
        ordered.append(current)
        below = children.get(current.id)
        if below:  # most observations are leaves
            stack.extend(sorted(below, key=_START_TIME, reverse=True))
    if len(ordered) != len(observations):
        # Something hangs off a parent outside the tree: refuse rather than drop it.
        raise TraceModelError("some observations are not reachable from the run's root")
    return tuple(ordered)


def build_workflow_trace(info: WorkflowTraceInfo, options: BuildOptions) -> Trace:
    """The trace of one workflow or chatflow run (see the module docstring).

    Raises:
        InvalidIdError: the caller's trace id breaks the id rules.
        TraceModelError: a node execution appears twice, or ids would collide.
    """
    trace_id, id_metadata = resolve_trace_id(info.workflow_run_id, info.context)
    name = workflow_trace_name(info.workflow_run_id, options)
    root_seed = ids.seed_run(info.workflow_run_id)
    root_id = ids.observation_id(root_seed)
    chatflow = is_chatflow(info)
    root_meta: dict[str, JsonValue] = {
        "workflow_run_id": info.workflow_run_id,
        "elapsed_time": info.elapsed_time,
        "status": info.status._value_,
        "error": info.error,
        "exceptions_count": info.exceptions_count,
        "query": info.query,
        "file_list": list(info.file_list),
    }
    if chatflow:
        root_meta["workflow_run_inputs"] = plain(info.workflow_run_inputs)
        root_meta["workflow_run_outputs"] = plain(info.workflow_run_outputs)
        answer = info.answer if info.answer is not None else info.workflow_run_outputs.get("answer")
        root_input: JsonValue = info.query or plain(info.workflow_run_inputs)
        root_output: JsonValue = answer
    else:
        root_input = plain(info.workflow_run_inputs)
        root_output = plain(info.workflow_run_outputs)
    root = observation(
        trace_id=trace_id,
        seed=root_seed,
        type_=ObservationType.CHAIN,
        name=name,
        start=info.start_time,
        end=info.end_time,
        parent_id=None,
        input_=root_input,
        output=root_output,
        metadata=root_meta,
        verdict=run_verdict(info.status, info.error, info.exceptions_count),
        version=info.version,
        seed_id=root_id,
    )
    observations: list[Observation] = [root]
    observations.extend(
        moderation_observation(
            check, trace_id=trace_id, parent_id=root_id, run_domain_id=info.workflow_run_id
        )
        for check in info.moderations
    )
    placement = _Placement(info, root_id)
    for node in info.node_executions:
        parent_id = placement.parent_of(node)
        built = node_observations(node, trace_id=trace_id, parent_id=parent_id)
        warning = placement.warnings.get(node.id)
        if warning is not None:
            built[0] = replace(
                built[0], metadata={**built[0].metadata, "opstrail_warning": warning}
            )
        holder = placement.by_obs_id.get(parent_id)
        if holder is not None:
            holder.members.append(built[0])
        observations.extend(built)
    wrappers = _build_wrappers(placement, trace_id)
    observations.extend(wrappers)
    if info.suggested_question is not None:
        observations.append(
            suggested_observation(
                info.suggested_question,
                trace_id=trace_id,
                parent_id=root_id,
                base_metadata={"workflow_run_id": info.workflow_run_id},
            )
        )
    return check_tree(
        new_trace(
            id=trace_id,
            name=name,
            timestamp=info.start_time,
            observations=_preorder(observations),
            user_id=info.context.user_session_id,
            session_id=info.conversation_id,
            tags=workflow_tags(info),
            metadata={**workflow_metadata(info), **id_metadata},
            environment=info.context.environment,
            release=options.release,
            version=info.version,
            input=root.input,
            output=root.output,
            external_parent_ids=frozenset(),
        )
    )


def _build_wrappers(placement: _Placement, trace_id: str) -> list[Observation]:
    # Build the deepest wrappers first, so a wrapper holding another (a parallel branch
    # inside an iteration index) sees it among its members.
    by_id = placement.by_obs_id

    def depth(wrapper: _Wrapper) -> int:
        level, parent = 0, by_id.get(wrapper.parent_id)
        while parent is not None:
            level += 1
            if level > len(by_id):
                raise TraceModelError("wrapper spans form a cycle")
            parent = by_id.get(parent.parent_id)
        return level

    built: list[Observation] = []
    for wrapper in sorted(placement.wrappers.values(), key=depth, reverse=True):
        obs = _wrapper_observation(wrapper, trace_id)
        built.append(obs)
        parent = by_id.get(wrapper.parent_id)
        if parent is not None:
            parent.members.append(obs)
    return built

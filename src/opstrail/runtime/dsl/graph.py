"""Workflow graphs of workflow and chatflow (advanced-chat) apps.

``parse_graph`` turns the ``workflow`` part of a DSL document into a checked ``Graph``, or
refuses it naming the node: a cycle (outside iteration/loop containers), a dangling edge, an
unknown variable selector, an unsupported node type (the ``agent`` node by name), code in a
language other than python3. What can still run is accepted with warnings: tools that are not
built in, dataset ids that cannot be resolved here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opstrail.errors import DslError
from opstrail.runtime.dsl.parse import check_name

SYSTEM_VARIABLES: Final = frozenset(
    {
        "query",
        "files",
        "conversation_id",
        "user_id",
        "app_id",
        "workflow_id",
        "workflow_run_id",
        "dialogue_count",
    }
)
RESERVED_HEADS: Final = frozenset({"sys", "env", "conversation"})
SUPPORTED_NODE_TYPES: Final = frozenset(
    {
        "start",
        "end",
        "answer",
        "llm",
        "knowledge-retrieval",
        "question-classifier",
        "parameter-extractor",
        "if-else",
        "template-transform",
        "code",
        "http-request",
        "tool",
        "variable-aggregator",
        "variable-assigner",  # legacy name of the variable aggregator
        "assigner",
        "iteration",
        "iteration-start",
        "loop",
        "loop-start",
        "loop-end",
        "list-operator",
        "document-extractor",
    }
)
CONTAINER_TYPES: Final = frozenset({"iteration", "loop"})
# Template references as Dify's variable pool defines them.
TEMPLATE_PATTERN: Final = re.compile(
    r"\{\{#([a-zA-Z0-9_]{1,50}(?:\.[a-zA-Z_][a-zA-Z0-9_]{0,29}){1,10})#\}\}"
)
# Keys of node data whose value is one selector, and keys holding a list of selectors.
_SELECTOR_KEYS: Final = (
    "variable_selector",
    "value_selector",
    "query_variable_selector",
    "iterator_selector",
    "output_selector",
    "assigned_variable_selector",
    "input_variable_selector",
)


@dataclass(frozen=True, slots=True)
class Edge:
    """A directed edge; ``source_handle`` selects the source's output port."""

    id: str
    source: str
    target: str
    source_handle: str = "source"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of the graph: ``data`` is the DSL's ``data`` mapping as imported."""

    id: str
    type: str
    title: str
    data: Mapping[str, Any]
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class VariableDecl:
    """An environment or conversation variable with its declared default."""

    name: str
    value_type: str
    value: Any
    description: str = ""


@dataclass(frozen=True, slots=True)
class StartVariable:
    """An input of the start node."""

    variable: str
    type: str
    required: bool
    label: str = ""
    options: tuple[str, ...] = ()
    max_length: int | None = None
    default: Any = None


@dataclass(frozen=True, slots=True)
class Graph:
    """A checked workflow graph.

    ``root_id`` is the start node of the top-level graph; container nodes (iteration, loop)
    hold their own subgraph, whose nodes carry ``parent_id``.
    """

    mode: str
    nodes: Mapping[str, NodeSpec]
    edges: tuple[Edge, ...]
    root_id: str
    start_variables: tuple[StartVariable, ...]
    environment_variables: tuple[VariableDecl, ...] = ()
    conversation_variables: tuple[VariableDecl, ...] = ()
    out_edges: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)
    in_edges: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)

    def container_start(self, container_id: str) -> str:
        """The node a container's body starts at (its iteration-start/loop-start child)."""
        node = self.nodes[container_id]
        start = str(node.data.get("start_node_id") or "")
        if start in self.nodes:
            return start
        for child in self.nodes.values():
            if child.parent_id == container_id and (
                child.type in ("iteration-start", "loop-start")
                or child.data.get("isIterationStart")
                or child.data.get("isLoopStart")
            ):
                return child.id
        raise DslError(f"node {_name(node)} has no start node for its body")


def _name(node: NodeSpec) -> str:
    return f"{node.id!r} ({node.title})" if node.title else repr(node.id)


def normalise_selector(selector: Sequence[Any]) -> tuple[str, ...]:
    """A selector as ``(head, name, *path)``; the older ``[<start-id>, 'sys.query']`` form
    becomes ``('sys', 'query')``."""
    parts = tuple(str(p) for p in selector)
    if len(parts) >= 2 and parts[1].startswith("sys.") and parts[0] not in RESERVED_HEADS:
        return ("sys", parts[1][4:], *parts[2:])
    return parts


def parse_graph(
    workflow: Mapping[str, Any],
    *,
    mode: str,
    known_tools: Collection[str] | None = None,
    known_dataset_ids: Collection[str] | None = None,
) -> tuple[Graph, list[str]]:
    """Check the ``workflow`` mapping of a workflow or advanced-chat DSL document.

    Args:
        workflow: the document's ``workflow`` mapping.
        mode: ``workflow`` or ``advanced-chat``.
        known_tools: names of the built-in tools available here (``None``: do not check).
        known_dataset_ids: dataset ids that resolve here; ``None`` leaves dataset ids to the
            importer, which checks them against the local datasets (and warns once).

    Returns:
        The graph and the import warnings.

    Raises:
        DslError: the graph cannot be honoured; the message names the node or edge.
    """
    if mode not in ("workflow", "advanced-chat"):
        raise DslError(f"mode {mode!r} has no workflow graph")
    graph_data = workflow.get("graph")
    if not isinstance(graph_data, Mapping):
        raise DslError("workflow.graph must be a mapping with nodes and edges")
    raw_nodes = graph_data.get("nodes") or []
    raw_edges = graph_data.get("edges") or []
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        raise DslError("workflow.graph.nodes and workflow.graph.edges must be lists")
    warnings: list[str] = []
    nodes = _parse_nodes(raw_nodes)
    edges = _parse_edges(raw_edges, nodes)
    out_edges: dict[str, list[Edge]] = {}
    in_edges: dict[str, list[Edge]] = {}
    for edge in edges:
        out_edges.setdefault(edge.source, []).append(edge)
        in_edges.setdefault(edge.target, []).append(edge)
    starts = [n for n in nodes.values() if n.type == "start" and n.parent_id is None]
    if len(starts) != 1:
        raise DslError(f"the workflow needs exactly one start node (found {len(starts)})")
    start = starts[0]
    for node in nodes.values():
        if mode == "workflow" and node.type == "answer":
            raise DslError(f"node {_name(node)}: answer nodes exist only in chatflow apps")
        if node.type in CONTAINER_TYPES:
            _check_container(node, nodes)
    _check_acyclic(nodes, edges)
    env_vars = _parse_variables(workflow.get("environment_variables"), "environment")
    conv_vars = _parse_variables(workflow.get("conversation_variables"), "conversation")
    start_vars = _parse_start_variables(start)
    _check_references(nodes, start, {v.name for v in env_vars}, {v.name for v in conv_vars},
                      {v.variable for v in start_vars})
    warnings.extend(_resource_warnings(nodes, known_tools, known_dataset_ids))
    graph = Graph(
        mode=mode,
        nodes=nodes,
        edges=tuple(edges),
        root_id=start.id,
        start_variables=start_vars,
        environment_variables=env_vars,
        conversation_variables=conv_vars,
        out_edges={k: tuple(v) for k, v in out_edges.items()},
        in_edges={k: tuple(v) for k, v in in_edges.items()},
    )
    for node in nodes.values():
        if node.type in CONTAINER_TYPES:
            graph.container_start(node.id)
    return graph, warnings


def _parse_nodes(raw_nodes: list[Any]) -> dict[str, NodeSpec]:
    nodes: dict[str, NodeSpec] = {}
    for position, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping):
            raise DslError(f"workflow.graph.nodes[{position}] is not a mapping")
        if raw.get("type") == "custom-note":
            continue  # sticky notes take no part in execution
        data = raw.get("data")
        node_id = raw.get("id")
        if not isinstance(data, Mapping) or node_id in (None, ""):
            raise DslError(f"workflow.graph.nodes[{position}] needs an id and a data mapping")
        node_id = check_name(str(node_id), f"workflow.graph.nodes[{position}].id")
        node_type = str(data.get("type") or "")
        title = str(data.get("title") or "")
        if node_type == "":
            continue  # a note written without the custom-note renderer
        if node_id in nodes:
            raise DslError(f"node id {node_id!r} is used twice")
        spec = NodeSpec(
            id=node_id,
            type=node_type,
            title=title,
            data=data,
            parent_id=str(raw["parentId"]) if raw.get("parentId") else None,
        )
        if node_type == "agent":
            raise DslError(
                f"node {_name(spec)} is an agent node; agent nodes (plugin agent strategies) "
                "are not supported"
            )
        if node_type not in SUPPORTED_NODE_TYPES:
            raise DslError(f"node {_name(spec)} has the unsupported node type {node_type!r}")
        if node_type == "code":
            language = data.get("code_language", "python3")
            if language != "python3":
                raise DslError(
                    f"node {_name(spec)}: code in {language!r} is not supported; only python3"
                )
        nodes[node_id] = spec
    for spec in nodes.values():
        if spec.parent_id is not None and spec.parent_id not in nodes:
            raise DslError(f"node {_name(spec)} names the missing container {spec.parent_id!r}")
        if spec.parent_id is not None and nodes[spec.parent_id].type not in CONTAINER_TYPES:
            raise DslError(f"node {_name(spec)} sits in a node that is not an iteration or loop")
    return nodes


def _parse_edges(raw_edges: list[Any], nodes: Mapping[str, NodeSpec]) -> list[Edge]:
    edges: list[Edge] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_edges):
        if not isinstance(raw, Mapping):
            raise DslError(f"workflow.graph.edges[{position}] is not a mapping")
        source, target = str(raw.get("source") or ""), str(raw.get("target") or "")
        edge_id = str(raw.get("id") or f"{source}-{target}-{position}")
        if source not in nodes or target not in nodes:
            missing = source if source not in nodes else target
            raise DslError(
                f"edge {edge_id!r} is dangling: node {missing!r} does not exist "
                f"(edge {source!r} -> {target!r})"
            )
        if nodes[source].parent_id != nodes[target].parent_id:
            raise DslError(
                f"edge {edge_id!r} crosses a container boundary ({source!r} -> {target!r})"
            )
        if edge_id in seen:
            edge_id = f"{edge_id}#{position}"
        seen.add(edge_id)
        handle = raw.get("sourceHandle")
        edges.append(Edge(id=edge_id, source=source, target=target,
                          source_handle=str(handle) if handle not in (None, "") else "source"))
    return edges


def _check_container(node: NodeSpec, nodes: Mapping[str, NodeSpec]) -> None:
    if not any(child.parent_id == node.id for child in nodes.values()):
        raise DslError(f"node {_name(node)} is a {node.type} without any node inside it")


def _check_acyclic(nodes: Mapping[str, NodeSpec], edges: Sequence[Edge]) -> None:
    """Refuse a cycle; loops repeat only through loop containers, never through edges."""
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        successors[edge.source].append(edge.target)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for root in nodes:
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(successors[root]))]
        state[root] = 1
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[current] = 2
                stack.pop()
            elif state.get(child) == 1:
                raise DslError(
                    f"the graph has a cycle through node {_name(nodes[child])}; "
                    "repeat work with a loop node instead"
                )
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(successors[child])))


def _parse_variables(raw: Any, kind: str) -> tuple[VariableDecl, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise DslError(f"workflow.{kind}_variables must be a list")
    found: list[VariableDecl] = []
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("name"):
            raise DslError(f"each {kind} variable needs a name")
        found.append(
            VariableDecl(
                name=check_name(str(item["name"]), f"workflow.{kind}_variables name"),
                value_type=str(item.get("value_type") or "string"),
                value=item.get("value"),
                description=str(item.get("description") or ""),
            )
        )
    return tuple(found)


def _parse_start_variables(start: NodeSpec) -> tuple[StartVariable, ...]:
    found: list[StartVariable] = []
    for item in start.data.get("variables") or []:
        if not isinstance(item, Mapping) or not item.get("variable"):
            raise DslError(f"node {_name(start)}: each input needs a 'variable' name")
        max_length = item.get("max_length")
        found.append(
            StartVariable(
                variable=str(item["variable"]),
                type=str(item.get("type") or "text-input"),
                required=bool(item.get("required", False)),
                label=str(item.get("label") or ""),
                options=tuple(str(o) for o in item.get("options") or ()),
                max_length=int(max_length) if isinstance(max_length, int) else None,
                default=item.get("default"),
            )
        )
    return tuple(found)


def iter_selectors(data: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
    """Every variable selector a node's data holds (for checks and dependency analysis)."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in _SELECTOR_KEYS and _is_selector(item):
                    yield item
                elif key == "variables" and isinstance(item, list) and all(
                    _is_selector(v) for v in item
                ) and item:
                    yield from item  # variable-aggregator: a list of selectors
                elif key == "query" and _is_selector(item):
                    yield item  # parameter-extractor
                elif key == "variable" and _is_selector(item):
                    yield item  # list-operator
                elif (
                    key == "value"
                    and value.get("input_type") == "variable"
                    and _is_selector(item)
                ) or (key == "value" and value.get("type") == "variable" and _is_selector(item)):
                    yield item  # assigner item or tool parameter of type variable
                elif isinstance(item, Mapping | list):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, Mapping | list))


def iter_template_references(data: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """Every ``{{#a.b#}}`` reference in the string values of a node's data."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            for match in TEMPLATE_PATTERN.finditer(value):
                yield tuple(match.group(1).split("."))
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _is_selector(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(p, str | int) and not isinstance(p, bool) for p in value)
    )


def _check_references(
    nodes: Mapping[str, NodeSpec],
    start: NodeSpec,
    env_names: set[str],
    conv_names: set[str],
    start_names: set[str],
) -> None:
    for node in nodes.values():
        loop_labels = _loop_labels(node)
        for selector in iter_selectors(node.data):
            _check_selector(node, normalise_selector(selector), nodes, start, env_names,
                            conv_names, start_names, loop_labels, template=False)
        for reference in iter_template_references(node.data):
            if reference == ("context",) or reference[0] == "context":
                continue
            _check_selector(node, normalise_selector(reference), nodes, start, env_names,
                            conv_names, start_names, loop_labels, template=True)


def _loop_labels(node: NodeSpec) -> set[str]:
    return {str(v.get("label")) for v in node.data.get("loop_variables") or []
            if isinstance(v, Mapping)}


def _check_selector(
    node: NodeSpec,
    selector: tuple[str, ...],
    nodes: Mapping[str, NodeSpec],
    start: NodeSpec,
    env_names: set[str],
    conv_names: set[str],
    start_names: set[str],
    loop_labels: set[str],
    *,
    template: bool,
) -> None:
    where = "template reference" if template else "variable selector"
    shown = "{{#" + ".".join(selector) + "#}}" if template else str(list(selector))
    head, name = selector[0], selector[1] if len(selector) > 1 else ""
    problem: str | None = None
    if head == "sys":
        if name not in SYSTEM_VARIABLES:
            problem = f"sys.{name} is not a system variable"
    elif head == "env":
        if name not in env_names:
            problem = f"environment variable {name!r} is not declared"
    elif head == "conversation":
        if name not in conv_names:
            problem = f"conversation variable {name!r} is not declared"
    elif head not in nodes:
        problem = f"node {head!r} does not exist"
    elif head == start.id and name not in start_names:
        problem = f"the start node has no input {name!r}"
    if problem:
        raise DslError(f"node {_name(node)}: {where} {shown} is unknown: {problem}")


def _resource_warnings(
    nodes: Mapping[str, NodeSpec],
    known_tools: Collection[str] | None,
    known_dataset_ids: Collection[str] | None,
) -> list[str]:
    warnings: list[str] = []
    for node in nodes.values():
        if node.type == "tool":
            provider_type = str(node.data.get("provider_type") or "builtin")
            tool_name = str(node.data.get("tool_name") or "")
            if provider_type != "builtin":
                warnings.append(
                    f"node {_name(node)}: tool {tool_name!r} is a {provider_type} tool of provider "
                    f"{node.data.get('provider_id')!r}, which is not available here; the node "
                    "will fail when it runs"
                )
            elif known_tools is not None and tool_name not in known_tools:
                warnings.append(
                    f"node {_name(node)}: built-in tool {tool_name!r} is unknown here; the node "
                    "will fail when it runs"
                )
        elif node.type == "knowledge-retrieval":
            if known_dataset_ids is None:
                continue
            for dataset_id in node.data.get("dataset_ids") or []:
                dataset_id = str(dataset_id)
                if dataset_id not in known_dataset_ids:
                    warnings.append(
                        f"node {_name(node)}: dataset id {dataset_id!r} cannot be resolved "
                        "here (map it to a local dataset); retrieval will skip it"
                    )
    return warnings

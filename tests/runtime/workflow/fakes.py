"""Small fakes of the runtime's ports for engine tests: a deterministic model, tools, a
retriever. They follow the protocols (ModelClient, ToolRunner, Retriever) exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opstrail.errors import RuntimeFailure
from opstrail.runtime.models.base import ModelChunk, ModelRequest, ModelResult, ModelUsage
from opstrail.tracing.info import RetrievedDocument


def schema_value(schema: Mapping[str, Any], text: str) -> Any:
    """A value valid for ``schema``; an enum picks the option named in ``text``, if any."""
    kind = schema.get("type")
    if "enum" in schema:
        options = list(schema["enum"])
        return next((o for o in options if str(o) in text), options[0] if options else "")
    if kind == "object":
        return {k: schema_value(v, text) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_value(schema.get("items") or {"type": "string"}, text)]
    if kind == "number":
        return 1
    if kind == "integer":
        return 1
    if kind == "boolean":
        return True
    return "value"


class FakeModel:
    """Echoes the last user message (``echo: ...``), or schema-valid JSON."""

    def __init__(self, owner: FakeModels) -> None:
        self.owner = owner

    def _answer(self, request: ModelRequest) -> str:
        self.owner.requests.append(request)
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        if request.response_schema is not None:
            classes = self.owner.pick(last) if self.owner.pick else None
            value = schema_value(request.response_schema, classes or last)
            return json.dumps(value)
        return f"echo: {last}"

    def invoke(self, request: ModelRequest) -> ModelResult:
        text = self._answer(request)
        now = datetime.now(UTC)
        return ModelResult(text=text, usage=self.owner.usage(text), start_time=now, end_time=now)

    def stream(self, request: ModelRequest) -> Iterator[ModelChunk]:
        if self.owner.fail:
            raise RuntimeFailure("the fake model is down", code="model_error")
        text = self._answer(request)
        half = len(text) // 2
        yield ModelChunk(delta=text[:half])
        yield ModelChunk(delta=text[half:], usage=self.owner.usage(text), finish_reason="stop")


class FakeModels:
    """A model resolver whose every model is ``FakeModel``; records the requests."""

    def __init__(self, pick: Any = None) -> None:
        self.requests: list[ModelRequest] = []
        self.pick = pick
        self.fail = False

    def usage(self, text: str) -> ModelUsage:
        return ModelUsage(prompt_tokens=10, completion_tokens=len(text.split()) + 1,
                          total_tokens=11 + len(text.split()))

    def client_for(self, provider: str, model: str) -> FakeModel:
        return FakeModel(self)


class FakeTools:
    """Built-in tools: ``upper`` and ``boom`` (fails)."""

    def run(self, name: str, args: Mapping[str, Any]) -> Any:
        if name == "upper":
            return str(args.get("text", "")).upper()
        if name == "boom":
            raise RuntimeFailure("tool boom exploded", code="tool_error")
        raise RuntimeFailure(f"unknown tool {name!r}", code="tool_unavailable")


class FakeRetriever:
    """Returns one document per known dataset id."""

    def retrieve(self, query: str, dataset_ids: Sequence[str], *, top_k: int = 4,
                 score_threshold: float | None = None
                 ) -> tuple[list[RetrievedDocument], list[str]]:
        docs = [RetrievedDocument(content=f"doc about {query}", score=0.9, dataset_id=d,
                                  document_name="handbook.md") for d in dataset_ids
                if d == "ds-1"]
        warnings = [f"dataset {d!r} not found" for d in dataset_ids if d != "ds-1"]
        return docs, warnings


# -- graph builders and a runner ---------------------------------------------------------


def node(node_id: str, node_type: str, *, parent: str | None = None, **data: Any) -> dict[str, Any]:
    """A DSL node mapping."""
    raw: dict[str, Any] = {"id": node_id, "type": "custom",
                           "data": {"type": node_type, "title": data.pop("title", node_id), **data}}
    if parent is not None:
        raw["parentId"] = parent
    return raw


def edge(source: str, target: str, handle: str = "source") -> dict[str, Any]:
    """A DSL edge mapping."""
    return {"id": f"{source}-{handle}-{target}", "source": source, "target": target,
            "sourceHandle": handle, "targetHandle": "target"}


def workflow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **extra: Any
             ) -> dict[str, Any]:
    """A ``workflow`` mapping around nodes and edges."""
    return {"graph": {"nodes": nodes, "edges": edges}, **extra}


def start(*variables: str, required: bool = True) -> dict[str, Any]:
    """A start node with text inputs."""
    return node("start", "start", variables=[
        {"variable": v, "label": v, "type": "text-input", "required": required}
        for v in variables])


def sandbox(timeout: float = 10.0) -> Any:
    from opstrail.runtime.nodes.code import CodeSandbox

    return CodeSandbox.detect(timeout_seconds=timeout, memory_mb=256)


def run(
    wf: dict[str, Any],
    *,
    mode: str = "workflow",
    inputs: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    models: Any = None,
    tools: Any = None,
    code_sandbox: Any = None,
    check_url: Any = None,
    outbound_http: Any = "loopback",
    timeout: float = 30.0,
    history: Sequence[Any] = (),
    listener: Any = None,
    conversation: dict[str, Any] | None = None,
) -> tuple[Any, list[tuple[str, dict[str, Any]]], Any]:
    """Parse and run a workflow with fakes; returns (outcome, events, engine).

    http-request nodes connect through the services' guarded transport, loopback only, unless
    ``outbound_http`` names another one (None: none at all)."""
    import uuid

    from opstrail.netguard import HostRules
    from opstrail.runtime.dsl.graph import parse_graph
    from opstrail.runtime.nodes.base import RunEnvironment
    from opstrail.runtime.workflow.engine import WorkflowEngine, run_with_timeout, validate_inputs
    from opstrail.services.workflows import guarded_outbound_http

    graph, _warnings = parse_graph(wf, mode=mode)
    env = RunEnvironment(
        models=models or FakeModels(),
        check_url=check_url or (lambda url: url),
        outbound_http=(guarded_outbound_http(HostRules(loopback_only=True))
                       if outbound_http == "loopback" else outbound_http),
        code_sandbox=code_sandbox or sandbox(),
        tools=tools or FakeTools(),
        retriever=FakeRetriever(),
        history=tuple(history),
        http_timeout=5.0,
    )
    events: list[tuple[str, dict[str, Any]]] = []

    def record(name: str, data: dict[str, Any]) -> None:
        events.append((name, data))
        if listener is not None:
            listener(name, data, engine)

    engine = WorkflowEngine(graph, env, workflow_run_id=str(uuid.uuid4()), listener=record)
    outcome = run_with_timeout(engine, timeout=timeout,
                               inputs=validate_inputs(graph, inputs or {}),
                               system=system or {}, conversation=conversation)
    return outcome, events, engine

"""Workflow runs: run (blocking or streaming), get a run, stop a task.

A run is three steps: a first transaction writes the run row (status ``running``); the engine
runs with a time limit (``settings.run_timeout_seconds``; never hangs); the final transaction
writes the outcome, every node execution and the trace record (``record_trace``) together, so
a stored trace never misses nodes. Chatflow messages (``services.chatflow``) reuse the same
steps with a conversation and a message.

The same functions serve the service API (``source=api``, triggered from ``app-run``) and the
console's debug runs (``source=console``, triggered from ``debugging``, environment
``settings.environment_console``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

import httpcore
import httpx
from sqlalchemy.orm import Session, sessionmaker

from opstrail.errors import NotFoundError, ValidationError
from opstrail.exporters.transport import DestinationRefused, GuardedTransport, rules_from_settings
from opstrail.netguard import HostRules, check_request_target
from opstrail.runtime.dsl.graph import Graph, parse_graph
from opstrail.runtime.dsl.parse import parse_document
from opstrail.runtime.nodes.base import (
    ModelResolver,
    OutboundHttp,
    RunEnvironment,
    ToolRunner,
    Turn,
)
from opstrail.runtime.nodes.code import CodeSandbox
from opstrail.runtime.ports import Retriever
from opstrail.runtime.tools.builtin import builtin_tools
from opstrail.runtime.tools.runner import ToolRunner as BuiltinToolRunner
from opstrail.runtime.workflow.engine import (
    EngineOutcome,
    WorkflowEngine,
    run_with_timeout,
    validate_inputs,
)
from opstrail.services.chat import TaskRegistry, model_registry_from_env
from opstrail.services.datasets import StoredRetriever
from opstrail.services.trace_recording import record_trace
from opstrail.settings import Settings
from opstrail.storage.repos import chat as chat_repo
from opstrail.storage.repos import workflows as workflow_repo
from opstrail.storage.tables.apps import App
from opstrail.storage.tables.workflows import WorkflowRun
from opstrail.tracing.info import (
    ConversationMode,
    FromSource,
    NodeExecution,
    RunContext,
    SuggestedQuestionTraceInfo,
    WorkflowRunStatus,
    WorkflowTraceInfo,
)

log = logging.getLogger(__name__)

ResponseMode = Literal["blocking", "streaming"]
Event = dict[str, Any]
_END: Final = object()


# -- what a run uses --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowResources:
    """Long-lived things runs share: the model registry, built-in tools, the code sandbox.
    Built once per server (``build_resources``) and passed in; tests pass fakes."""

    models: ModelResolver
    code_sandbox: CodeSandbox
    tools: ToolRunner | None = None


def build_resources(settings: Settings, *, models: ModelResolver | None = None
                    ) -> WorkflowResources:
    """The resources of a deployment: models as configured (offline fallback per
    ``settings.model_fallback``) unless given, the built-in tools, and the sandbox found on
    this host."""
    return WorkflowResources(
        models=models or model_registry_from_env(settings),
        code_sandbox=CodeSandbox.detect(timeout_seconds=settings.code_timeout_seconds,
                                        memory_mb=settings.code_memory_mb),
        tools=BuiltinToolRunner(builtin_tools()),
    )


# -- one run ----------------------------------------------------------------------------


@dataclass
class RunSetup:
    """Everything decided before the engine starts."""

    app: App
    graph: Graph
    inputs: dict[str, Any]
    system: dict[str, Any]
    user: str
    source: FromSource
    account_id: str | None
    end_user_id: str | None
    workflow_run_id: str
    task_id: str
    workflow_id: str
    version: str
    external_trace_id: str | None
    environment: str
    conversation_id: str | None = None
    message_id: str | None = None
    query: str = ""
    history: tuple[Turn, ...] = ()
    conversation_variables: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def triggered_from(self) -> Literal["app-run", "debugging"]:
        return "debugging" if self.source == FromSource.CONSOLE else "app-run"

    @property
    def user_key(self) -> str:
        """Who may stop the task: the end user's id, or the console account id."""
        return self.end_user_id or self.account_id or ""

    @property
    def is_chatflow(self) -> bool:
        return self.graph.mode == "advanced-chat"


@dataclass
class RunResult:
    """A finished run as stored."""

    setup: RunSetup
    outcome: EngineOutcome
    started_at: datetime
    finished_at: datetime
    elapsed: float
    total_tokens: int
    prompt_tokens: int
    completion_tokens: int
    total_price: Decimal | None


def load_graph(app: App, *, expected_modes: Sequence[str]) -> Graph:
    """The checked graph of an app's stored DSL.

    Raises:
        ValidationError: the app is not of an expected mode (``app_unavailable``).
    """
    if app.mode not in expected_modes:
        raise ValidationError(
            f"app mode {app.mode!r} does not match this endpoint (expected "
            f"{' or '.join(expected_modes)})", code="app_unavailable")
    document = parse_document(app.dsl)
    assert document.workflow is not None  # parse_document checked the mode's part
    graph, _warnings = parse_graph(document.workflow, mode=app.mode)
    return graph


def workflow_identity(app: App, source: FromSource) -> tuple[str, str]:
    """``(workflow_id, version)``: a stable id per stored DSL and the version Dify shows
    (``draft`` for debug runs)."""
    digest = hashlib.sha256(app.dsl.encode()).hexdigest()[:16]
    workflow_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"opstrail:workflow:{app.id}:{digest}"))
    version = "draft" if source == FromSource.CONSOLE else app.updated_at.isoformat()
    return workflow_id, version


def prepare_setup(
    session: Session,
    settings: Settings,
    *,
    app: App,
    graph: Graph,
    inputs: Mapping[str, Any],
    user: str,
    source: FromSource,
    account_id: str | None,
    external_trace_id: str | None,
    files: Sequence[Any] = (),
) -> RunSetup:
    """Check inputs and identities and build the run's setup (no rows written yet).

    Raises:
        ValidationError: a required input is missing or malformed; ``user`` is empty.
    """
    if not isinstance(inputs, Mapping):
        raise ValidationError("inputs must be an object", code="invalid_param")
    checked = validate_inputs(graph, inputs)
    if source == FromSource.API and not (user or "").strip():
        raise ValidationError("user is required", code="invalid_param")
    end_user_id = None
    if source == FromSource.API:
        end_user_id = chat_repo.get_or_create_end_user(
            session, tenant_id=app.tenant_id, app_id=app.id, session_id=user).id
    workflow_run_id = str(uuid.uuid4())
    workflow_id, version = workflow_identity(app, source)
    system: dict[str, Any] = {
        "files": list(files),
        "user_id": user or account_id or "",
        "app_id": app.id,
        "workflow_id": workflow_id,
        "workflow_run_id": workflow_run_id,
    }
    environment = (settings.environment_console if source == FromSource.CONSOLE
                   else settings.environment_api)
    return RunSetup(
        app=app, graph=graph, inputs=checked, system=system, user=user or account_id or "",
        source=source, account_id=account_id, end_user_id=end_user_id,
        workflow_run_id=workflow_run_id, task_id=str(uuid.uuid4()), workflow_id=workflow_id,
        version=version, external_trace_id=external_trace_id, environment=environment,
    )


def insert_run_row(session: Session, setup: RunSetup) -> None:
    """The first transaction's row: the run exists (``running``) before the engine starts."""
    workflow_repo.create_run(
        session,
        id=setup.workflow_run_id,
        tenant_id=setup.app.tenant_id,
        app_id=setup.app.id,
        workflow_id=setup.workflow_id,
        version=setup.version[:64],
        type="chat" if setup.is_chatflow else "workflow",
        triggered_from=setup.triggered_from,
        from_source=setup.source.value,
        created_by_role="account" if setup.source == FromSource.CONSOLE else "end_user",
        created_by=(setup.account_id if setup.source == FromSource.CONSOLE
                    else setup.end_user_id) or setup.user,
        task_id=setup.task_id,
        status=WorkflowRunStatus.RUNNING.value,
        inputs=_jsonable(setup.inputs),
        outputs=None,
        error=None,
        elapsed_time=0.0,
        total_tokens=0,
        total_steps=0,
        exceptions_count=0,
        conversation_id=setup.conversation_id,
        message_id=setup.message_id,
        external_trace_id=setup.external_trace_id,
        created_at=setup.created_at,
    )


def execute(
    settings: Settings,
    resources: WorkflowResources,
    setup: RunSetup,
    *,
    retriever: Retriever | None,
    tasks: TaskRegistry | None,
    listener: Callable[[str, dict[str, Any]], None] | None,
) -> tuple[RunResult, WorkflowEngine]:
    """Run the engine under the run timeout; never raises for a node failure."""
    rules = rules_from_settings(settings)
    env = RunEnvironment(
        models=resources.models,
        check_url=_url_guard(rules),
        outbound_http=guarded_outbound_http(rules),
        code_sandbox=resources.code_sandbox,
        tools=resources.tools,
        retriever=retriever,
        http_timeout=settings.http_timeout_seconds,
        history=setup.history,
    )
    stop_event = (tasks.add(setup.task_id, app_id=setup.app.id, user_key=setup.user_key)
                  if tasks is not None else None)
    engine = WorkflowEngine(setup.graph, env, workflow_run_id=setup.workflow_run_id,
                            listener=listener, stop_event=stop_event)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        outcome = run_with_timeout(engine, timeout=settings.run_timeout_seconds,
                                   inputs=setup.inputs, system=setup.system,
                                   conversation=setup.conversation_variables)
    finally:
        if tasks is not None:
            tasks.remove(setup.task_id)
    elapsed = time.perf_counter() - started
    finished_at = datetime.now(UTC)
    leaf = [e for e in outcome.node_executions]
    prices = [e.total_price for e in leaf if e.total_price is not None]
    result = RunResult(
        setup=setup,
        outcome=outcome,
        started_at=started_at,
        finished_at=finished_at,
        elapsed=elapsed,
        total_tokens=sum(e.total_tokens for e in leaf),
        prompt_tokens=sum(e.prompt_tokens for e in leaf),
        completion_tokens=sum(e.completion_tokens for e in leaf),
        total_price=sum(prices, Decimal(0)) if prices else None,
    )
    return result, engine


def _url_guard(rules: HostRules) -> Callable[[str], str]:
    def check(url: str) -> str:
        return check_request_target(url, refuse_private=rules.refuse_private,
                                    loopback_only=rules.loopback_only, resolver=rules.resolver)

    return check


def guarded_outbound_http(rules: HostRules,
                          inner: httpcore.NetworkBackend | None = None) -> OutboundHttp:
    """http-request transports that check every address they connect to by ``rules`` (the
    rules of ``check_url`` too), so a target that resolves elsewhere after its check (DNS
    rebinding) is refused; ``inner`` opens the sockets (tests record connects with it).

    No proxy, as before: the node's client ignores environment proxies, and TLS trusts the
    certifi bundle whatever ``SSL_CERT_FILE`` says (``trust_env=False``).
    """
    def transport(verify: bool) -> httpx.BaseTransport:
        context = httpx.create_ssl_context(verify=verify, trust_env=False)
        return GuardedTransport(rules, verify=context, inner=inner)

    def refusal(error: BaseException) -> str | None:
        return error.reason if isinstance(error, DestinationRefused) else None

    return OutboundHttp(transport=transport, refusal=refusal)


def node_row(app_id: str, workflow_run_id: str, execution: NodeExecution) -> dict[str, Any]:
    """A node execution as a ``node_executions`` row."""
    metadata: dict[str, Any] = {
        "total_tokens": execution.total_tokens,
        "prompt_tokens": execution.prompt_tokens,
        "completion_tokens": execution.completion_tokens,
        "total_price": str(execution.total_price) if execution.total_price is not None
        else None,
        "currency": execution.currency,
        "model_provider": execution.model_provider,
        "model_name": execution.model_name,
        "time_to_first_token": execution.time_to_first_token,
        "iteration_id": execution.iteration_id,
        "iteration_index": execution.iteration_index,
        "loop_id": execution.loop_id,
        "loop_index": execution.loop_index,
        "parallel_id": execution.parallel_id,
        "parallel_start_node_id": execution.parallel_start_node_id,
        "error_strategy": execution.error_strategy,
        "retry_count": execution.retry_count,
        "tool_name": execution.tool_name,
    }
    return {
        "id": execution.id,
        "workflow_run_id": workflow_run_id,
        "app_id": app_id,
        "index": execution.index,
        "node_id": execution.node_id,
        "node_type": execution.node_type,
        "title": execution.title[:255],
        "predecessor_node_id": execution.predecessor_node_id,
        "status": execution.status.value,
        "error": execution.error,
        "inputs": dict(execution.inputs),
        "process_data": dict(execution.process_data),
        "outputs": dict(execution.outputs),
        "execution_metadata": metadata,
        "elapsed_time": execution.elapsed_time,
        "created_at": execution.start_time,
        "finished_at": execution.end_time,
    }


def trace_info(result: RunResult) -> WorkflowTraceInfo:
    """The complete trace record of a finished run (nodes included)."""
    setup, outcome = result.setup, result.outcome
    run_inputs = dict(_jsonable(setup.inputs))
    for key, value in setup.system.items():
        run_inputs[f"sys.{key}"] = _jsonable(value)
    if setup.is_chatflow:
        run_inputs["sys.query"] = setup.query
        run_inputs["sys.conversation_id"] = setup.conversation_id
    context = RunContext(
        app_id=setup.app.id,
        tenant_id=setup.app.tenant_id,
        from_source=setup.source,
        user_session_id=setup.user or None,
        from_account_id=setup.account_id,
        from_end_user_id=setup.end_user_id,
        app_name=setup.app.name,
        environment=setup.environment,
        external_trace_id=setup.external_trace_id,
    )
    files = tuple(str(f.get("url") or f.get("filename") or "") if isinstance(f, Mapping)
                  else str(f) for f in setup.system.get("files") or [])
    return WorkflowTraceInfo(
        workflow_id=setup.workflow_id,
        conversation_id=setup.conversation_id,
        workflow_run_id=setup.workflow_run_id,
        tenant_id=setup.app.tenant_id,
        elapsed_time=result.elapsed,
        status=outcome.status,
        version=setup.version,
        total_tokens=result.total_tokens,
        file_list=files,
        triggered_from=setup.triggered_from,
        workflow_run_inputs=run_inputs,
        workflow_run_outputs=_jsonable(outcome.outputs),
        error=outcome.error,
        query=setup.query,
        workflow_app_log_id=None,
        message_id=setup.message_id,
        start_time=result.started_at,
        end_time=result.finished_at,
        node_executions=outcome.node_executions,
        context=context,
        conversation_mode=(ConversationMode.ADVANCED_CHAT if setup.is_chatflow
                           else ConversationMode.WORKFLOW),
        answer=outcome.answer if setup.is_chatflow else None,
        total_price=result.total_price,
        currency="USD",
        exceptions_count=outcome.exceptions_count,
    )


def store_outcome(session: Session, settings: Settings, result: RunResult, *,
                  suggested: SuggestedQuestionTraceInfo | None = None) -> WorkflowRun:
    """The final transaction's writes: run outcome, node rows, trace record (the caller
    adds its own rows, e.g. the chatflow message, and commits). ``suggested`` are the
    follow-up questions of a chatflow turn, which belong in the run's trace."""
    setup, outcome = result.setup, result.outcome
    # The trace first: building and encoding it (record_trace) then happens before this
    # transaction's first write, not while it holds SQLite's write lock.
    info = trace_info(result)
    if suggested is not None:
        info = replace(info, suggested_question=suggested)
    record_trace(session, settings, info)
    run = workflow_repo.finish_run(
        session,
        workflow_run_id=setup.workflow_run_id,
        status=outcome.status.value,
        outputs=_jsonable(outcome.outputs),
        error=outcome.error,
        elapsed_time=result.elapsed,
        total_tokens=result.total_tokens,
        total_steps=len(outcome.node_executions),
        exceptions_count=outcome.exceptions_count,
        finished_at=result.finished_at,
        message_id=setup.message_id,
        conversation_id=setup.conversation_id,
    )
    workflow_repo.add_node_executions(
        session, [node_row(setup.app.id, setup.workflow_run_id, e)
                  for e in outcome.node_executions])
    return run


def run_payload(run: WorkflowRun) -> dict[str, Any]:
    """A run as Dify's API shows it (``data`` of the blocking answer, GET run)."""
    return {
        "id": run.id,
        "workflow_id": run.workflow_id,
        "status": run.status,
        "outputs": run.outputs,
        "error": run.error,
        "elapsed_time": run.elapsed_time,
        "total_tokens": run.total_tokens,
        "total_steps": run.total_steps,
        "created_at": int(run.created_at.timestamp()),
        "finished_at": int(run.finished_at.timestamp()) if run.finished_at else None,
    }


# -- the workflow use cases ------------------------------------------------------------


def run_workflow(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    app: App,
    inputs: Mapping[str, Any],
    user: str,
    source: FromSource = FromSource.API,
    account_id: str | None = None,
    response_mode: ResponseMode = "blocking",
    external_trace_id: str | None = None,
    files: Sequence[Any] = (),
    resources: WorkflowResources | None = None,
    tasks: TaskRegistry | None = None,
) -> dict[str, Any] | Iterator[Event]:
    """Run a workflow app.

    Returns:
        Blocking: Dify's answer ``{"workflow_run_id", "task_id", "data": {...}}``.
        Streaming: an iterator of events (``{"event": ..., ...}``): ``workflow_started``,
        ``node_started``/``node_finished``, iteration and loop events, ``text_chunk``,
        ``workflow_finished``, and ``ping`` while idle.

    Raises:
        ValidationError: inputs are missing or malformed (before anything is stored), or
            the app is not a workflow app.
    """
    graph = load_graph(app, expected_modes=("workflow",))
    resources = resources or build_resources(settings)
    with session_factory() as session:
        setup = prepare_setup(session, settings, app=app, graph=graph, inputs=inputs, user=user,
                              source=source, account_id=account_id,
                              external_trace_id=external_trace_id, files=files)
        insert_run_row(session, setup)
        session.commit()
    retriever = StoredRetriever(session_factory, app_id=app.id, tenant_id=app.tenant_id)
    if response_mode == "blocking":
        result, _engine = execute(settings, resources, setup, retriever=retriever,
                                  tasks=tasks, listener=None)
        with session_factory() as session:
            run = store_outcome(session, settings, result)
            session.commit()
            payload = run_payload(run)
        return {"workflow_run_id": setup.workflow_run_id, "task_id": setup.task_id,
                "data": payload}

    def work(emit: Callable[[Event], None]) -> None:
        emit({"event": "workflow_started", "task_id": setup.task_id,
              "workflow_run_id": setup.workflow_run_id,
              "data": {"id": setup.workflow_run_id, "workflow_id": setup.workflow_id,
                       "inputs": _jsonable(setup.inputs),
                       "created_at": int(setup.created_at.timestamp())}})

        def listener(name: str, data: dict[str, Any]) -> None:
            emit({"event": name, "task_id": setup.task_id,
                  "workflow_run_id": setup.workflow_run_id, "data": data})

        result, _engine = execute(settings, resources, setup, retriever=retriever,
                                  tasks=tasks, listener=listener)
        with session_factory() as session:
            run = store_outcome(session, settings, result)
            session.commit()
            payload = run_payload(run)
        emit({"event": "workflow_finished", "task_id": setup.task_id,
              "workflow_run_id": setup.workflow_run_id, "data": payload})

    return stream_events(work, name=f"wf-{setup.workflow_run_id[:8]}")


def stream_events(work: Callable[[Callable[[Event], None]], None], *, name: str
                  ) -> Iterator[Event]:
    """Run ``work`` in a thread and yield what it emits (the SSE layer adds pings).

    The run goes on (and is stored) when the client goes away, as in Dify.
    """
    events: queue.Queue[Any] = queue.Queue()

    def target() -> None:
        try:
            work(events.put)
        except Exception as exc:  # the stream's worker boundary, logged
            log.exception("workflow stream %s crashed", name)
            events.put({"event": "error", "status": 500, "code": "run_failed",
                        "message": str(exc) or type(exc).__name__})
        finally:
            events.put(_END)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()

    def iterate() -> Iterator[Event]:
        while True:
            item = events.get()  # the worker always ends with _END (the run has a timeout)
            if item is _END:
                return
            yield item

    return iterate()


def get_run(session: Session, *, app: App, workflow_run_id: str) -> dict[str, Any]:
    """A run of ``app`` as Dify's GET /workflows/run/{id} shows it.

    Raises:
        NotFoundError: no such run for this app.
    """
    run = workflow_repo.get_run(session, app_id=app.id, workflow_run_id=workflow_run_id)
    if run is None:
        raise NotFoundError(f"workflow run {workflow_run_id} not found", code="not_found")
    return {**run_payload(run), "inputs": run.inputs}


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of run data (as stored and traced)."""
    return json.loads(json.dumps(value, default=str))

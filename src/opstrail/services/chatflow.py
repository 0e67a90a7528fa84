"""Chatflow (advanced-chat) messages: one workflow run per message, in a conversation.

``POST /v1/chat-messages`` hands advanced-chat apps to ``handle_chat_message``. The first
transaction stores the conversation (new or continued) and the run row; the engine runs with
the conversation's earlier turns as memory and its conversation variables; the final
transaction stores the run, its node executions, the message (query and answer), the
conversation variables and the trace record together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from opstrail import ids
from opstrail.errors import NotFoundError, RuntimeFailure, ValidationError
from opstrail.runtime.models.registry import ResolvedModel
from opstrail.runtime.naming import generate_name
from opstrail.runtime.nodes.base import Turn
from opstrail.runtime.suggest import Suggestions, suggest_questions
from opstrail.services.chat import TaskRegistry, check_external_trace_id, suggestions_enabled
from opstrail.services.datasets import StoredRetriever
from opstrail.services.trace_recording import record_trace
from opstrail.services.workflows import (
    Event,
    RunResult,
    WorkflowResources,
    build_resources,
    execute,
    insert_run_row,
    load_graph,
    prepare_setup,
    run_payload,
    store_outcome,
    stream_events,
    trace_info,
)
from opstrail.settings import Settings
from opstrail.storage.repos import chat as chat_repo
from opstrail.storage.repos import workflows as workflow_repo
from opstrail.storage.tables.apps import App
from opstrail.storage.tables.chat import Message
from opstrail.tracing.info import FromSource, WorkflowRunStatus

HISTORY_LIMIT = 100


def _field(body: Any, name: str, default: Any = None) -> Any:
    if isinstance(body, Mapping):
        return body.get(name, default)
    return getattr(body, name, default)


def handle_chat_message(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    app: App,
    body: Any,
    source: FromSource = FromSource.API,
    account_id: str | None = None,
    external_trace_id: str | None = None,
    tasks: TaskRegistry | None = None,
    resources: WorkflowResources | None = None,
) -> dict[str, Any] | Iterator[Event]:
    """Run one chatflow message.

    Args:
        body: the chat-messages body (``query``, ``inputs``, ``user``, ``conversation_id``,
            ``response_mode``, ``files``, ``trace_id``), a model or a mapping.
        external_trace_id: the ``X-Trace-Id`` header (wins over ``body.trace_id``).

    Returns:
        Blocking: Dify's answer (``event: message`` with ``answer`` and ``metadata.usage``).
        Streaming: events ``workflow_started``, node events, ``message`` per answer part,
        ``workflow_finished``, ``message_end`` (or ``error``).

    Raises:
        ValidationError: empty query, missing inputs, wrong app mode (nothing stored).
        NotFoundError: the conversation does not exist for this user.
    """
    graph = load_graph(app, expected_modes=("advanced-chat",))
    query = str(_field(body, "query", "") or "")
    if not query.strip():
        raise ValidationError("query is required", code="invalid_param")
    user = str(_field(body, "user", "") or "")
    external = check_external_trace_id(external_trace_id or _field(body, "trace_id"))
    response_mode = _field(body, "response_mode", "streaming") or "streaming"
    conversation_id = _field(body, "conversation_id") or None
    resources = resources or build_resources(settings)
    with session_factory() as session:
        inputs = dict(_field(body, "inputs", {}) or {})
        conversation = None
        if conversation_id:
            conversation = chat_repo.get_conversation(session, app_id=app.id,
                                                      conversation_id=str(conversation_id))
            if conversation is None:
                raise NotFoundError("Conversation Not Exists.", code="not_found")
            inputs = {**dict(conversation.inputs or {}), **inputs}
        setup = prepare_setup(session, settings, app=app, graph=graph, inputs=inputs, user=user,
                              source=source, account_id=account_id, external_trace_id=external,
                              files=list(_field(body, "files", []) or []))
        if conversation is not None and conversation.from_end_user_id not in (
                None, setup.end_user_id) and source == FromSource.API:
            raise NotFoundError("Conversation Not Exists.", code="not_found")
        if conversation is None:
            conversation = chat_repo.create_conversation(
                session, app_id=app.id, mode=app.mode, inputs=setup.inputs, introduction="",
                from_source=source.value, from_end_user_id=setup.end_user_id,
                from_account_id=account_id)
        turns = chat_repo.history(session, conversation_id=conversation.id, limit=HISTORY_LIMIT)
        setup.history = tuple(Turn(query=m.query, answer=m.answer) for m in turns)
        setup.conversation_variables = workflow_repo.conversation_variables(
            session, conversation_id=conversation.id)
        setup.conversation_id = conversation.id
        setup.message_id = ids.new_uuid()
        setup.query = query
        setup.system.update({
            "query": query,
            "conversation_id": conversation.id,
            "dialogue_count": conversation.dialogue_count + 1,
        })
        insert_run_row(session, setup)
        session.commit()
    retriever = StoredRetriever(session_factory, app_id=app.id, tenant_id=app.tenant_id)
    suggestions_on = suggestions_enabled(app)
    base = {"task_id": setup.task_id, "message_id": setup.message_id,
            "conversation_id": setup.conversation_id}
    created_at = int(setup.created_at.timestamp())

    def finish(result: RunResult, variables: Mapping[str, Any]) -> dict[str, Any]:
        suggestions = _suggest(settings, resources, result) if suggestions_on else None
        with session_factory() as session:
            run = store_outcome(session, settings, result,
                                suggested=suggestions.trace if suggestions else None)
            message = _store_message(session, result, variables)
            if suggestions is not None:
                message.suggested_questions = list(suggestions.questions)
            session.commit()
            payload = run_payload(run)
        if not setup.history:
            _name_new_conversation(session_factory, settings, resources, result)
        return payload

    def usage(result: RunResult) -> dict[str, Any]:
        return {"prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "total_tokens": result.total_tokens,
                "total_price": str(result.total_price or 0), "currency": "USD",
                "latency": result.elapsed}

    if response_mode == "blocking":
        result, engine = execute(settings, resources, setup, retriever=retriever, tasks=tasks,
                                 listener=None)
        finish(result, engine.pool.namespace("conversation"))
        if result.outcome.status == WorkflowRunStatus.FAILED:
            raise ValidationError(result.outcome.error or "the run failed",
                                  code="completion_request_error")
        # workflow_run_id is an addition to Dify's shape: the chatflow trace is keyed by it.
        return {"event": "message", **base, "id": setup.message_id, "mode": "advanced-chat",
                "answer": result.outcome.answer, "workflow_run_id": setup.workflow_run_id,
                "metadata": {"usage": usage(result)}, "created_at": created_at}

    def work(emit: Callable[[Event], None]) -> None:
        run_base = {"task_id": setup.task_id, "workflow_run_id": setup.workflow_run_id,
                    "message_id": setup.message_id, "conversation_id": setup.conversation_id}
        emit({"event": "workflow_started", **run_base,
              "data": {"id": setup.workflow_run_id, "workflow_id": setup.workflow_id,
                       "inputs": setup.inputs, "created_at": created_at}})

        def listener(name: str, data: dict[str, Any]) -> None:
            if name == "text_chunk":
                emit({"event": "message", **base, "id": setup.message_id,
                      "answer": data.get("text", ""), "created_at": created_at})
                return
            emit({"event": name, **run_base, "data": data})

        result, engine = execute(settings, resources, setup, retriever=retriever, tasks=tasks,
                                 listener=listener)
        payload = finish(result, engine.pool.namespace("conversation"))
        emit({"event": "workflow_finished", **run_base, "data": payload})
        if result.outcome.status == WorkflowRunStatus.FAILED:
            emit({"event": "error", **base, "status": 400, "code": "completion_request_error",
                  "message": result.outcome.error or "the run failed"})
            return
        emit({"event": "message_end", **base, "id": setup.message_id,
              "metadata": {"usage": usage(result)}})

    return stream_events(work, name=f"chatflow-{setup.workflow_run_id[:8]}")


def _graph_model(resources: WorkflowResources, graph: Any) -> ResolvedModel:
    """The model of the graph's first LLM node (the offline model when there is none or it
    cannot be resolved): what a chatflow's own follow-up calls (title, suggestions) use."""
    llm = next((n for n in graph.nodes.values() if n.type == "llm"), None)
    model = (llm.data.get("model") or {}) if llm is not None else {}
    try:
        return resources.models.resolve(str(model.get("provider") or "opstrail"),
                                        str(model.get("name") or "offline"))
    except RuntimeFailure:
        return resources.models.resolve("opstrail", "offline")


def _suggest(settings: Settings, resources: WorkflowResources, result: RunResult
             ) -> Suggestions | None:
    """Follow-up questions of a successful chatflow turn, generated right after the answer
    and before the run's trace is written, so they land in that run's trace."""
    setup, outcome = result.setup, result.outcome
    if outcome.status != WorkflowRunStatus.SUCCEEDED or setup.message_id is None:
        return None
    made = suggest_questions(
        _graph_model(resources, setup.graph), query=setup.query, answer=outcome.answer or "",
        message_id=setup.message_id, message_data={}, from_source=setup.source,
        from_account_id=setup.account_id, from_end_user_id=setup.end_user_id,
        agent_based=False,
    )
    return Suggestions(made.questions,
                       replace(made.trace, workflow_run_id=setup.workflow_run_id))


def _name_new_conversation(session_factory: sessionmaker[Session], settings: Settings,
                           resources: WorkflowResources, result: RunResult) -> None:
    """Name a new chatflow conversation after its first turn, as chat apps do: one model call
    with the model of the graph's first LLM node, recorded as the conversation's
    ``generate_name`` trace (its own transaction, like Dify's background naming)."""
    setup = result.setup
    if setup.conversation_id is None:
        return
    resolved = _graph_model(resources, setup.graph)
    # The title trace is the conversation's, not this run's: no caller trace id on it.
    context = replace(trace_info(result).context, external_trace_id=None)
    with session_factory() as session:
        conversation = chat_repo.get_conversation(session, app_id=setup.app.id,
                                                  conversation_id=setup.conversation_id)
        if conversation is None or conversation.name_generations:
            return
        named = generate_name(resolved, query=setup.query, conversation_id=conversation.id,
                              context=context, sequence=1)
        conversation.name = named.name[:255]
        conversation.name_generations = 1
        record_trace(session, settings, named.trace)
        session.commit()


def _store_message(session: Session, result: RunResult, variables: Mapping[str, Any]) -> Message:
    """The message of a chatflow turn, the conversation's turn count and its variables."""
    setup, outcome = result.setup, result.outcome
    assert setup.conversation_id is not None and setup.message_id is not None
    failed = outcome.status in (WorkflowRunStatus.FAILED,)
    stopped = outcome.status == WorkflowRunStatus.STOPPED
    first_llm = next((e for e in outcome.node_executions if e.model_calls), None)
    trace_id = (ids.external_trace_id(setup.external_trace_id) if setup.external_trace_id
                else ids.trace_id(setup.workflow_run_id))
    message = chat_repo.create_message(
        session,
        id=setup.message_id,
        app_id=setup.app.id,
        conversation_id=setup.conversation_id,
        mode="advanced-chat",
        query=setup.query,
        answer=outcome.answer,
        inputs=dict(setup.inputs),
        status="error" if failed else ("stopped" if stopped else "normal"),
        error=outcome.error if (failed or stopped) else None,
        model_provider=first_llm.model_provider or "" if first_llm else "",
        model_id=first_llm.model_name or "" if first_llm else "",
        message_tokens=result.prompt_tokens,
        answer_tokens=result.completion_tokens,
        total_price=result.total_price,
        currency="USD",
        latency=result.elapsed,
        suggested_questions=[],
        retriever_resources=[],
        agent_based=False,
        trace_id=trace_id,
        external_trace_id=setup.external_trace_id,
        workflow_run_id=setup.workflow_run_id,
        from_source=setup.source.value,
        from_end_user_id=setup.end_user_id,
        from_account_id=setup.account_id,
        created_at=setup.created_at,
    )
    conversation = chat_repo.get_conversation(session, app_id=setup.app.id,
                                              conversation_id=setup.conversation_id)
    if conversation is not None:
        chat_repo.touch_conversation(session, conversation=conversation)  # counts the turn
    declared = {v.name for v in setup.graph.conversation_variables}
    workflow_repo.save_conversation_variables(
        session, app_id=setup.app.id, conversation_id=setup.conversation_id,
        values={k: v for k, v in variables.items() if k in declared})
    return message

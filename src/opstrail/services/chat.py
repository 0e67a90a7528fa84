"""Running chat, agent-chat and completion messages, and the conversation use cases.

``run_chat_message`` / ``run_completion_message`` check everything that can be refused
(inputs, conversation ownership) and store the conversation and the message before any model
runs, so a refusal is a 4xx and a run is never lost. The returned ``MessageRun`` is iterated
(streaming) or drained (blocking); when the run ends its message row is completed and its trace
is written to the outbox in the same transaction (``record_trace``). A new conversation is then
named (its own transaction and trace).

Console runs call the same functions with ``source=FromSource.CONSOLE`` and ``account_id``.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from opstrail import ids
from opstrail.errors import NotFoundError, RuntimeFailure, ValidationError
from opstrail.runtime.apps import RunDeps, RunRequest, run_message
from opstrail.runtime.apps.common import (
    AgentThought,
    AnswerDelta,
    AnswerReplaced,
    RunCompleted,
    RunFailed,
    RunOutcome,
)
from opstrail.runtime.dsl.model_config import AppSpec
from opstrail.runtime.dsl.parse import WORKFLOW_MODES, parse_document
from opstrail.runtime.models.pricing import unit_prices
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry
from opstrail.runtime.naming import generate_name
from opstrail.runtime.prompt import Exchange, validate_inputs
from opstrail.services.apps import SpecCache, load_spec
from opstrail.services.datasets import StoredRetriever
from opstrail.services.trace_recording import record_trace
from opstrail.settings import Settings
from opstrail.storage.repos import chat as chat_repo
from opstrail.storage.tables.apps import App
from opstrail.storage.tables.chat import Conversation, Message
from opstrail.tracing.info import FromSource, GenerateNameTraceInfo, RunContext

SessionFactory = Callable[[], Session]
MAX_QUERY_CHARS = 100_000


class MessageBody(BaseModel):
    """Body of ``POST /v1/chat-messages`` and ``/v1/completion-messages`` (Dify's fields)."""

    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(default_factory=dict)
    query: str = Field(default="", max_length=MAX_QUERY_CHARS)
    response_mode: Literal["blocking", "streaming"] = "blocking"  # as Dify when absent
    conversation_id: str | None = None
    user: str = Field(default="", max_length=255)
    files: list[Any] = Field(default_factory=list)
    auto_generate_name: bool = True
    trace_id: str | None = None


def model_registry_from_env(settings: Settings) -> ModelRegistry:
    """The registry for this deployment: ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` (the openai
    package's own variables) and ``settings.model_fallback``."""
    return ModelRegistry(
        ModelOptions(
            openai_base_url=os.environ.get("OPENAI_BASE_URL") or None,
            openai_api_key=os.environ.get("OPENAI_API_KEY") or None,
            fallback=settings.model_fallback,
            timeout_seconds=settings.run_timeout_seconds,
        )
    )


@dataclass(slots=True)
class _Task:
    app_id: str
    user_key: str
    stop: threading.Event = field(default_factory=threading.Event)


class TaskRegistry:
    """Running tasks by task id, so ``stop`` can reach them. One per server (on app.state)."""

    def __init__(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()

    def add(self, task_id: str, *, app_id: str, user_key: str) -> threading.Event:
        with self._lock:
            task = _Task(app_id, user_key)
            self._tasks[task_id] = task
            return task.stop

    def remove(self, task_id: str) -> None:
        with self._lock:
            self._tasks.pop(task_id, None)

    def stop(self, task_id: str, *, app_id: str, user_key: str) -> bool:
        """Ask a task to stop; ``False`` when it is unknown, finished or someone else's."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.app_id != app_id or task.user_key != user_key:
                return False
            task.stop.set()
            return True


@dataclass(frozen=True, slots=True)
class Caller:
    """Who runs the message: an end user of the service API or a console account."""

    source: FromSource
    end_user_id: str | None
    account_id: str | None
    session_id: str  # the API's ``user`` string, or the account id

    @property
    def key(self) -> str:
        return self.end_user_id or self.account_id or ""


def _caller(session: Session, app: App, *, source: FromSource, user: str | None,
            account_id: str | None) -> Caller:
    if source == FromSource.CONSOLE:
        if not account_id:
            raise ValidationError("a console run needs the account id")
        return Caller(source, None, account_id, account_id)
    if not user or not user.strip():
        raise ValidationError("user is required", code="invalid_param")
    end_user = chat_repo.get_or_create_end_user(session, tenant_id=app.tenant_id, app_id=app.id,
                                                session_id=user)
    return Caller(source, end_user.id, None, user)


def _find_caller(session: Session, app: App, *, source: FromSource, user: str | None,
                 account_id: str | None) -> Caller | None:
    """The caller without creating an end user (``None``: an unknown user)."""
    if source == FromSource.CONSOLE:
        return Caller(source, None, account_id, account_id or "")
    if not user:
        raise ValidationError("user is required", code="invalid_param")
    end_user = chat_repo.find_end_user(session, app_id=app.id, session_id=user)
    return Caller(source, end_user.id, None, user) if end_user else None


def _owned_conversation(session: Session, app: App, conversation_id: str, caller: Caller | None) -> Conversation:
    conversation = chat_repo.get_conversation(session, app_id=app.id, conversation_id=conversation_id)
    if conversation is None or caller is None or (
        (conversation.from_end_user_id or conversation.from_account_id) != caller.key
    ):
        # Another user's conversation is answered like an absent one: no existence leak.
        raise NotFoundError("Conversation Not Exists.", code="not_found")
    return conversation


def _timestamp(value: datetime) -> int:
    return int(value.timestamp())


def usage_json(outcome: RunOutcome) -> dict[str, Any]:
    """Dify's ``metadata.usage`` of a message."""
    prices = unit_prices(outcome.provider, outcome.model)
    calls = [r.model_call for r in outcome.trace.agent_rounds] or (
        [outcome.trace.model_call] if outcome.trace.model_call else []
    )
    prompt_price = sum((c.input_price or Decimal(0) for c in calls), Decimal(0))
    completion_price = sum((c.output_price or Decimal(0) for c in calls), Decimal(0))
    million = Decimal(1_000_000)
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "prompt_unit_price": str((prices[0] * million).normalize()) if prices else "0",
        "prompt_price_unit": "0.000001",
        "prompt_price": str(prompt_price),
        "completion_tokens": outcome.answer_tokens,
        "completion_unit_price": str((prices[1] * million).normalize()) if prices else "0",
        "completion_price_unit": "0.000001",
        "completion_price": str(completion_price),
        "total_tokens": outcome.prompt_tokens + outcome.answer_tokens,
        "total_price": str(outcome.total_price) if outcome.total_price is not None else None,
        "currency": outcome.currency,
        "latency": round(outcome.latency, 6),
    }


class MessageRun:
    """A prepared message: iterate ``events()`` (streaming) or call ``blocking()``."""

    def __init__(self, *, session_factory: SessionFactory, settings: Settings, app: App, spec: AppSpec,
                 caller: Caller, request: RunRequest, deps: RunDeps, task_id: str,
                 created_at: datetime, new_conversation: bool, auto_generate_name: bool,
                 tasks: TaskRegistry | None, stop_event: threading.Event | None) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.app = app
        self.spec = spec
        self.caller = caller
        self.request = request
        self.deps = deps
        self.task_id = task_id
        self.created_at = created_at
        self.new_conversation = new_conversation
        self.auto_generate_name = auto_generate_name
        self.tasks = tasks
        self.stop_event = stop_event
        self.outcome: RunOutcome | None = None

    @property
    def message_id(self) -> str:
        return self.request.message_id

    @property
    def conversation_id(self) -> str | None:
        return self.request.conversation_id

    def _base(self, event: str) -> dict[str, Any]:
        base: dict[str, Any] = {"event": event, "task_id": self.task_id, "id": self.message_id,
                                "message_id": self.message_id}
        if self.conversation_id is not None:
            base["conversation_id"] = self.conversation_id
        return base

    def events(self) -> Iterator[dict[str, Any]]:
        """Dify stream events as dicts, ending with ``message_end`` or ``error``.

        The message is completed and its trace recorded before the last event is yielded;
        a caller that stops reading does not stop the run (it is drained and stored).
        """
        answer_event = "agent_message" if self.spec.mode == "agent-chat" else "message"
        created = _timestamp(self.created_at)
        try:
            for event in run_message(self.request, self.deps):
                if isinstance(event, AnswerDelta):
                    yield {**self._base(answer_event), "answer": event.text, "created_at": created}
                elif isinstance(event, AgentThought):
                    yield {
                        **self._base("agent_thought"), "id": event.id, "position": event.position,
                        "thought": event.thought, "observation": event.observation,
                        "tool": event.tool, "tool_labels": {}, "tool_input": event.tool_input,
                        "message_files": [], "created_at": _timestamp(event.created_at),
                    }
                elif isinstance(event, AnswerReplaced):
                    yield {**self._base("message_replace"), "answer": event.text, "created_at": created}
                elif isinstance(event, RunFailed):
                    pass  # reported after the message is stored, below
                elif isinstance(event, RunCompleted):
                    self._complete(event.outcome)
        finally:
            if self.tasks is not None:
                self.tasks.remove(self.task_id)
        outcome = self.outcome
        if outcome is None:
            raise RuntimeFailure("the run ended without an outcome", code="internal_error")
        if outcome.error is not None:
            yield {**self._base("error"), "status": 400, "code": outcome.error_code or "completion_request_error",
                   "message": outcome.error}
            return
        yield {**self._base("message_end"), "metadata": self.metadata(outcome)}
        self._name_conversation()

    def metadata(self, outcome: RunOutcome) -> dict[str, Any]:
        metadata: dict[str, Any] = {"usage": usage_json(outcome)}
        if self.request.ignored_files:
            metadata["warnings"] = [
                f"files are not supported; {self.request.ignored_files} file(s) were ignored"
            ]
        if self.spec.retriever_resource:
            metadata["retriever_resources"] = [dict(r) for r in outcome.retriever_resources]
        return metadata

    def blocking(self) -> dict[str, Any]:
        """Run to the end and return Dify's blocking answer.

        Raises:
            ValidationError: the run failed (model or provider); code is Dify's
                (``completion_request_error``, ``provider_not_initialize``). The message is
                stored with status ``error`` and its trace recorded first.
        """
        for _event in self.events():
            pass
        outcome = self.outcome
        assert outcome is not None
        if outcome.error is not None:
            raise ValidationError(outcome.error, code=outcome.error_code or "completion_request_error")
        body: dict[str, Any] = {
            "event": "message",
            "task_id": self.task_id,
            "id": self.message_id,
            "message_id": self.message_id,
            "mode": self.spec.mode,
            "answer": outcome.answer,
            "metadata": self.metadata(outcome),
            "created_at": _timestamp(self.created_at),
        }
        if self.conversation_id is not None:
            body["conversation_id"] = self.conversation_id
        return body

    def _complete(self, outcome: RunOutcome) -> None:
        """Store the finished message and record its trace in one transaction."""
        with self.session_factory() as session:
            message = session.get(Message, self.message_id)
            if message is None:  # deleted while running (app deleted): nothing to complete
                self.outcome = outcome
                return
            message.answer = outcome.answer
            message.status = outcome.status.value
            message.error = outcome.error
            message.model_provider = outcome.provider
            message.model_id = outcome.model
            message.message_tokens = outcome.prompt_tokens
            message.answer_tokens = outcome.answer_tokens
            message.total_price = outcome.total_price
            message.currency = outcome.currency
            message.latency = outcome.latency
            message.suggested_questions = list(outcome.suggested_questions)
            message.retriever_resources = [dict(r) for r in outcome.retriever_resources]
            message.updated_at = outcome.trace.end_time
            # Before this transaction's first write: building and encoding the trace then
            # does not hold SQLite's write lock.
            record_trace(session, self.settings, outcome.trace)
            chat_repo.add_thoughts(session, message_id=message.id, thoughts=[
                {
                    "id": t.id, "position": t.position, "thought": t.thought, "tool": t.tool,
                    "tool_input": t.tool_input, "observation": t.observation,
                    "message_tokens": t.prompt_tokens, "answer_tokens": t.answer_tokens,
                    "total_price": t.total_price, "latency": t.latency, "created_at": t.created_at,
                }
                for t in outcome.thoughts
            ])
            if message.conversation_id:
                conversation = session.get(Conversation, message.conversation_id)
                if conversation is not None:
                    chat_repo.touch_conversation(session, conversation=conversation)
            session.commit()
        self.outcome = outcome

    def _name_conversation(self) -> None:
        if not (self.new_conversation and self.auto_generate_name and self.conversation_id):
            return
        rename_conversation(
            self.session_factory, self.settings, app=self.app, conversation_id=self.conversation_id,
            caller=self.caller, name=None, auto_generate=True, models=self.deps.models,
            context=self.request.context, spec=self.spec,
        )


def _context(settings: Settings, app: App, caller: Caller, external_trace_id: str | None) -> RunContext:
    console = caller.source == FromSource.CONSOLE
    return RunContext(
        app_id=app.id,
        tenant_id=app.tenant_id,
        from_source=caller.source,
        user_session_id=caller.session_id,
        from_account_id=caller.account_id,
        from_end_user_id=caller.end_user_id,
        app_name=app.name,
        environment=settings.environment_console if console else settings.environment_api,
        external_trace_id=external_trace_id,
    )


def check_external_trace_id(value: str | None) -> str | None:
    """Validate a caller's trace id (``X-Trace-Id`` / ``trace_id``); ``None`` when absent.

    Raises:
        InvalidIdError: the value breaks ``^[A-Za-z0-9_-]{1,128}$`` (400).
    """
    if value is None or value == "":
        return None
    ids.external_trace_id(value)
    return value


def _prepare(
    session_factory: SessionFactory,
    settings: Settings,
    *,
    app: App,
    body: MessageBody,
    source: FromSource,
    user: str | None,
    account_id: str | None,
    external_trace_id: str | None,
    models: ModelRegistry | None,
    tasks: TaskRegistry | None,
    chat: bool,
    specs: SpecCache | None = None,
) -> MessageRun:
    # The defaults of both public entry points: the body's user, the environment's models.
    if user is None:
        user = body.user
    if models is None:
        models = model_registry_from_env(settings)
    spec = specs.spec(app) if specs is not None else load_spec(app)
    external = check_external_trace_id(external_trace_id or body.trace_id)
    if chat and not body.query.strip():
        raise ValidationError("query is required", code="invalid_param")
    with session_factory() as session:
        caller = _caller(session, app, source=source, user=user, account_id=account_id)
        conversation: Conversation | None = None
        history: list[Exchange] = []
        new_conversation = False
        if chat and body.conversation_id:
            conversation = _owned_conversation(session, app, body.conversation_id, caller)
            inputs = dict(conversation.inputs or {})
            history = [
                Exchange(m.query, m.answer)
                for m in chat_repo.history(session, conversation_id=conversation.id,
                                           limit=spec.history_window)
            ]
        else:
            inputs = validate_inputs(spec, body.inputs)
        if chat and conversation is None:
            conversation = chat_repo.create_conversation(
                session, app_id=app.id, mode=app.mode, inputs=inputs,
                introduction=spec.opening_statement, from_source=caller.source.value,
                from_end_user_id=caller.end_user_id, from_account_id=caller.account_id,
            )
            new_conversation = True
        message_id = ids.new_uuid()
        trace_id = ids.external_trace_id(external) if external else ids.trace_id(message_id)
        message = chat_repo.create_message(
            session, id=message_id, app_id=app.id,
            conversation_id=conversation.id if conversation else None, mode=app.mode,
            query=body.query, answer="", inputs=inputs, status="normal", error=None,
            model_provider=spec.model.provider, model_id=spec.model.name, message_tokens=0,
            answer_tokens=0, total_price=None, currency="USD", latency=0.0,
            suggested_questions=[], retriever_resources=[], agent_based=app.mode == "agent-chat",
            trace_id=trace_id, external_trace_id=external, workflow_run_id=None,
            from_source=caller.source.value, from_end_user_id=caller.end_user_id,
            from_account_id=caller.account_id,
        )
        created_at = message.created_at
        conversation_id = conversation.id if conversation else None
        session.commit()
    task_id = str(uuid.uuid4())
    stop_event = tasks.add(task_id, app_id=app.id, user_key=caller.key) if tasks else None
    request = RunRequest(
        spec=spec,
        message_id=message_id,
        conversation_id=conversation_id,
        inputs=inputs,
        query=body.query,
        context=_context(settings, app, caller, external),
        history=tuple(history),
        stream=body.response_mode == "streaming",
        should_stop=stop_event.is_set if stop_event is not None else None,
        app_version=app.dsl_version,
        ignored_files=len(body.files),
    )
    deps = RunDeps(models=models, retriever=StoredRetriever(session_factory, app_id=app.id,
                                                            tenant_id=app.tenant_id))
    return MessageRun(
        session_factory=session_factory, settings=settings, app=app, spec=spec, caller=caller,
        request=request, deps=deps, task_id=task_id, created_at=created_at,
        new_conversation=new_conversation, auto_generate_name=body.auto_generate_name,
        tasks=tasks, stop_event=stop_event,
    )


def run_chat_message(
    session_factory: SessionFactory,
    settings: Settings,
    *,
    app: App,
    request: MessageBody,
    source: FromSource,
    user: str | None = None,
    account_id: str | None = None,
    external_trace_id: str | None = None,
    models: ModelRegistry | None = None,
    tasks: TaskRegistry | None = None,
    specs: SpecCache | None = None,
) -> MessageRun:
    """Prepare a chat or agent-chat message (API: ``user``; console: ``account_id``).

    Raises:
        ValidationError: bad inputs, no query or no user (400 ``invalid_param``); the app is
            not a chat app (``app_unavailable``).
        NotFoundError: the conversation is absent or another user's.
        InvalidIdError: a malformed external trace id.
    """
    if app.mode not in ("chat", "agent-chat"):
        raise ValidationError(f"app mode {app.mode} does not serve chat-messages",
                              code="app_unavailable")
    return _prepare(session_factory, settings, app=app, body=request, source=source, user=user,
                    account_id=account_id, external_trace_id=external_trace_id, models=models,
                    tasks=tasks, chat=True, specs=specs)


def run_completion_message(
    session_factory: SessionFactory,
    settings: Settings,
    *,
    app: App,
    request: MessageBody,
    source: FromSource,
    user: str | None = None,
    account_id: str | None = None,
    external_trace_id: str | None = None,
    models: ModelRegistry | None = None,
    tasks: TaskRegistry | None = None,
    specs: SpecCache | None = None,
) -> MessageRun:
    """Prepare a completion message; see ``run_chat_message``."""
    if app.mode != "completion":
        raise ValidationError(f"app mode {app.mode} does not serve completion-messages",
                              code="app_unavailable")
    return _prepare(session_factory, settings, app=app, body=request, source=source, user=user,
                    account_id=account_id, external_trace_id=external_trace_id, models=models,
                    tasks=tasks, chat=False, specs=specs)


def stop_task(tasks: TaskRegistry, session_factory: SessionFactory, *, app: App, task_id: str,
              user: str | None, account_id: str | None = None) -> None:
    """Ask a running task to stop (Dify answers success even for unknown tasks)."""
    with session_factory() as session:
        source = FromSource.CONSOLE if account_id else FromSource.API
        caller = _find_caller(session, app, source=source, user=user, account_id=account_id)
    if caller is not None:
        tasks.stop(task_id, app_id=app.id, user_key=caller.key)


# -- conversations and messages ------------------------------------------------------------


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "name": conversation.name,
        "inputs": conversation.inputs or {},
        "status": conversation.status,
        "introduction": conversation.introduction,
        "created_at": _timestamp(conversation.created_at),
        "updated_at": _timestamp(conversation.updated_at),
    }


def list_conversations(session: Session, *, app: App, user: str | None, limit: int = 20,
                       last_id: str | None = None, account_id: str | None = None) -> dict[str, Any]:
    """Dify's ``GET /conversations`` answer for one user."""
    source = FromSource.CONSOLE if account_id else FromSource.API
    caller = _find_caller(session, app, source=source, user=user, account_id=account_id)
    if caller is None:
        return {"limit": limit, "has_more": False, "data": []}
    rows, has_more = chat_repo.list_conversations(
        session, app_id=app.id, from_end_user_id=caller.end_user_id,
        from_account_id=caller.account_id, limit=limit, last_id=last_id,
    )
    return {"limit": limit, "has_more": has_more, "data": [conversation_json(c) for c in rows]}


def list_messages(session: Session, *, app: App, conversation_id: str, user: str | None,
                  limit: int = 20, first_id: str | None = None,
                  account_id: str | None = None) -> dict[str, Any]:
    """Dify's ``GET /messages`` answer: a page of one conversation, oldest first."""
    source = FromSource.CONSOLE if account_id else FromSource.API
    caller = _find_caller(session, app, source=source, user=user, account_id=account_id)
    conversation = _owned_conversation(session, app, conversation_id, caller)
    rows, has_more = chat_repo.list_messages(session, conversation_id=conversation.id, limit=limit,
                                             first_id=first_id)
    message_ids = [m.id for m in rows]
    thoughts = chat_repo.thoughts_of(session, message_ids=message_ids)
    feedback = chat_repo.feedback_of(session, message_ids=message_ids, from_source=source.value)
    data = []
    for m in rows:
        rating = feedback.get(m.id)
        data.append({
            "id": m.id,
            "conversation_id": m.conversation_id,
            "inputs": m.inputs or {},
            "query": m.query,
            "answer": m.answer,
            "status": m.status,
            "error": m.error,
            "message_files": [],
            "feedback": {"rating": rating.rating} if rating else None,
            "retriever_resources": m.retriever_resources or [],
            "agent_thoughts": [
                {
                    "id": t.id, "message_id": m.id, "position": t.position, "thought": t.thought,
                    "tool": t.tool, "tool_input": t.tool_input, "observation": t.observation,
                    "files": [], "created_at": _timestamp(t.created_at),
                }
                for t in thoughts.get(m.id, [])
            ],
            "created_at": _timestamp(m.created_at),
        })
    return {"limit": limit, "has_more": has_more, "data": data}


def owned_message(session: Session, *, app: App, message_id: str, user: str | None,
                  account_id: str | None = None) -> tuple[Message, Caller]:
    """A message of this caller.

    Raises:
        NotFoundError: absent, or another user's (``Message Not Exists.``).
    """
    source = FromSource.CONSOLE if account_id else FromSource.API
    caller = _find_caller(session, app, source=source, user=user, account_id=account_id)
    message = chat_repo.get_message(session, app_id=app.id, message_id=message_id)
    if message is None or caller is None or (
        (message.from_end_user_id or message.from_account_id) != caller.key
    ):
        raise NotFoundError("Message Not Exists.", code="not_found")
    return message, caller


def suggested_questions(session: Session, *, app: App, message_id: str, user: str | None,
                        specs: SpecCache | None = None) -> dict[str, Any]:
    """The stored follow-up questions of a message (generated during its run)."""
    message = owned_message(session, app=app, message_id=message_id, user=user)[0]
    if not suggestions_enabled(app, specs):
        raise ValidationError("Function Suggested questions after answer disabled.",
                              code="app_suggested_questions_after_answer_disabled")
    return {"result": "success", "data": list(message.suggested_questions or [])}


def suggestions_enabled(app: App, specs: SpecCache | None = None) -> bool:
    """Whether the app has "suggested questions after answer" on: from its model_config, or
    for a chatflow from its workflow features (a chatflow has no model_config)."""
    if app.mode in WORKFLOW_MODES:
        features = (parse_document(app.dsl).workflow or {}).get("features")
        after = features.get("suggested_questions_after_answer") if isinstance(
            features, Mapping) else None
        return bool(isinstance(after, Mapping) and after.get("enabled"))
    spec = specs.spec(app) if specs is not None else load_spec(app)
    return spec.suggested_questions_after_answer


def rename_conversation(
    session_factory: SessionFactory,
    settings: Settings,
    *,
    app: App,
    conversation_id: str,
    caller: Caller | None = None,
    user: str | None = None,
    account_id: str | None = None,
    name: str | None,
    auto_generate: bool,
    models: ModelRegistry | None = None,
    context: RunContext | None = None,
    spec: AppSpec | None = None,
) -> dict[str, Any]:
    """Rename a conversation, or generate its name with the app's model (recorded as a
    ``GenerateNameTraceInfo`` trace in the same transaction as the new name).

    Raises:
        ValidationError: neither a name nor ``auto_generate``.
        NotFoundError: the conversation is absent or another user's.
    """
    if not auto_generate and not (name and name.strip()):
        raise ValidationError("name is required when auto_generate is false", code="invalid_param")
    with session_factory() as session:
        if caller is None:
            source = FromSource.CONSOLE if account_id else FromSource.API
            caller = _find_caller(session, app, source=source, user=user, account_id=account_id)
        conversation = _owned_conversation(session, app, conversation_id, caller)
        assert caller is not None
        if not auto_generate:
            conversation.name = (name or "").strip()[:255]
            session.commit()
            return conversation_json(conversation)
        first = chat_repo.first_message(session, conversation_id=conversation.id)
        query = first.query if first is not None else ""
        sequence = (conversation.name_generations or 0) + 1
        run_context = context or _context(settings, app, caller, None)
        trace = _generated_name(app, query=query, conversation_id=conversation.id,
                                context=run_context, sequence=sequence,
                                models=models or model_registry_from_env(settings),
                                spec=spec or load_spec(app))
        conversation.name = trace.outputs[:255]
        conversation.name_generations = sequence
        record_trace(session, settings, trace)
        session.commit()
        return conversation_json(conversation)


def _generated_name(app: App, *, query: str, conversation_id: str, context: RunContext,
                    sequence: int, models: ModelRegistry, spec: AppSpec) -> GenerateNameTraceInfo:
    try:
        resolved = models.resolve(spec.model.provider, spec.model.name)
    except RuntimeFailure as exc:
        now = datetime.now(UTC)
        name = " ".join(query.split())[:75] or "New conversation"
        return GenerateNameTraceInfo(
            conversation_id=conversation_id, inputs=query, outputs=name, start_time=now,
            end_time=now, tenant_id=app.tenant_id, context=context, sequence=sequence,
            model_call=None, error=exc.message,
        )
    return generate_name(resolved, query=query, conversation_id=conversation_id, context=context,
                         sequence=sequence).trace


def message_caller_context(settings: Settings, app: App, message: Message) -> RunContext:
    """The run context of a stored message (for feedback)."""
    source = FromSource(message.from_source)
    return RunContext(
        app_id=app.id,
        tenant_id=app.tenant_id,
        from_source=source,
        user_session_id=None,
        from_account_id=message.from_account_id,
        from_end_user_id=message.from_end_user_id,
        app_name=app.name,
        environment=settings.environment_console if source == FromSource.CONSOLE else settings.environment_api,
        external_trace_id=message.external_trace_id,
    )



def app_parameters(app: App, specs: SpecCache | None = None) -> dict[str, Any]:
    """Dify's ``GET /parameters`` of a chat, agent-chat or completion app: opening statement,
    preset questions, feature switches and the input form.

    Raises:
        ValidationError: a workflow or chatflow app (``app_unavailable``).
    """
    if app.mode not in ("chat", "agent-chat", "completion"):
        raise ValidationError(f"parameters of {app.mode} apps are not served here",
                              code="app_unavailable")
    spec = specs.spec(app) if specs is not None else load_spec(app)
    form: list[dict[str, Any]] = []
    for item in spec.user_input_form:
        settings: dict[str, Any] = {"label": item.label, "variable": item.variable,
                                    "required": item.required,
                                    "default": "" if item.default is None else item.default}
        if item.type == "select":
            settings["options"] = list(item.options)
        if item.max_length is not None:
            settings["max_length"] = item.max_length
        form.append({item.type: settings})
    return {
        "opening_statement": spec.opening_statement,
        "suggested_questions": list(spec.suggested_questions),
        "suggested_questions_after_answer": {"enabled": spec.suggested_questions_after_answer},
        "speech_to_text": {"enabled": False},
        "text_to_speech": {"enabled": False},
        "retriever_resource": {"enabled": spec.retriever_resource},
        "annotation_reply": {"enabled": False},
        "more_like_this": {"enabled": False},
        "sensitive_word_avoidance": {"enabled": spec.moderation.enabled},
        "user_input_form": form,
        "file_upload": {"enabled": False},
        "system_parameters": {},
    }

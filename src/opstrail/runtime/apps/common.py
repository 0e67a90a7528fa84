"""What every chat, agent-chat and completion run shares: its request, its events, its
outcome, and the assembly of the ``MessageTraceInfo``.

A run is a generator of events (answer pieces, agent thoughts, a replaced answer, an error)
that ends with ``RunCompleted``. The outcome holds everything the services layer stores in
one transaction: the message fields and the complete trace record.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from opstrail.errors import RuntimeFailure
from opstrail.runtime.dsl.model_config import AppSpec
from opstrail.runtime.models.calls import CallOutcome
from opstrail.runtime.models.registry import ModelRegistry, ResolvedModel
from opstrail.runtime.ports import Retriever
from opstrail.runtime.prompt import Exchange
from opstrail.tracing.info import (
    AgentRound,
    ConversationMode,
    DatasetRetrievalTraceInfo,
    MessageStatus,
    MessageTraceInfo,
    ModelCall,
    ModerationTraceInfo,
    RetrievedDocument,
    RunContext,
    SuggestedQuestionTraceInfo,
    ToolTraceInfo,
)
from opstrail.tracing.values import JsonValue


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One message to run. ``inputs`` are already validated against the form."""

    spec: AppSpec
    message_id: str
    conversation_id: str | None
    inputs: Mapping[str, Any]
    query: str
    context: RunContext
    history: Sequence[Exchange] = ()
    stream: bool = False
    should_stop: Callable[[], bool] | None = None
    app_version: str | None = None
    ignored_files: int = 0  # files sent with the message, which opstrail does not read


@dataclass(frozen=True, slots=True)
class RunDeps:
    """What a run uses from outside: models and knowledge retrieval."""

    models: ModelRegistry
    retriever: Retriever | None = None


# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """A piece of the answer (SSE ``message`` or, for agents, ``agent_message``)."""

    text: str


@dataclass(frozen=True, slots=True)
class AgentThought:
    """An agent round's decision or its tools' observation (SSE ``agent_thought``)."""

    id: str
    position: int
    thought: str
    tool: str
    tool_input: str
    observation: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AnswerReplaced:
    """Output moderation replaced the answer (SSE ``message_replace``)."""

    text: str


@dataclass(frozen=True, slots=True)
class RunFailed:
    """The run failed (SSE ``error``); ``code`` is Dify's error code."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StoredThought:
    """An agent round as stored (one row per round)."""

    id: str
    position: int
    thought: str
    tool: str
    tool_input: str
    observation: str
    prompt_tokens: int
    answer_tokens: int
    total_price: Decimal | None
    latency: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Everything a finished run produced."""

    answer: str
    status: MessageStatus
    error: str | None
    error_code: str | None
    trace: MessageTraceInfo
    prompt_tokens: int
    answer_tokens: int
    total_price: Decimal | None
    currency: str
    latency: float
    provider: str
    model: str
    retriever_resources: tuple[Mapping[str, JsonValue], ...] = ()
    suggested_questions: tuple[str, ...] = ()
    thoughts: tuple[StoredThought, ...] = ()
    moderation_flagged: bool = False


@dataclass(frozen=True, slots=True)
class RunCompleted:
    outcome: RunOutcome


RunEvent = AnswerDelta | AgentThought | AnswerReplaced | RunFailed | RunCompleted


def relay(
    gen: Generator[str, None, CallOutcome], wrap: Callable[[str], RunEvent]
) -> Generator[RunEvent, None, CallOutcome]:
    """Re-yield a streaming call's text pieces as run events and return its outcome."""
    while True:
        try:
            piece = next(gen)
        except StopIteration as done:
            outcome: CallOutcome = done.value
            return outcome
        yield wrap(piece)


def drain(events: Iterator[RunEvent]) -> RunOutcome:
    """Consume a run (blocking mode) and return its outcome."""
    for event in events:
        if isinstance(event, RunCompleted):
            return event.outcome
    raise RuntimeFailure("the run ended without an outcome", code="internal_error")


@dataclass(slots=True)
class RunRecorder:
    """Collects what happens during a run and assembles the trace record at the end."""

    request: RunRequest
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    resolved: ResolvedModel | None = None
    model_calls: list[ModelCall] = field(default_factory=list)
    rounds: list[AgentRound] = field(default_factory=list)
    tools: list[ToolTraceInfo] = field(default_factory=list)
    retrievals: list[DatasetRetrievalTraceInfo] = field(default_factory=list)
    moderations: list[ModerationTraceInfo] = field(default_factory=list)
    suggestion: SuggestedQuestionTraceInfo | None = None
    documents: list[RetrievedDocument] = field(default_factory=list)
    thoughts: list[StoredThought] = field(default_factory=list)

    @property
    def user_id(self) -> str | None:
        return self.request.context.user_session_id

    def message_data(self, **extra: JsonValue) -> dict[str, JsonValue]:
        """The message fields repeated in every record's ``message_data``."""
        spec = self.request.spec
        data: dict[str, JsonValue] = {
            "id": self.request.message_id,
            "conversation_id": self.request.conversation_id,
            "app_id": self.request.context.app_id,
            "query": self.request.query,
            "model_provider": spec.model.provider,
            "model_id": spec.model.name,
        }
        if self.resolved is not None and self.resolved.is_fallback:
            data["requested_provider"] = self.resolved.requested_provider
            data["requested_model"] = self.resolved.requested_model
            data["model_fallback"] = "offline"
        data.update(extra)
        return data

    def retriever_resources(self) -> tuple[Mapping[str, JsonValue], ...]:
        if not self.request.spec.retriever_resource:
            return ()
        return tuple(
            {
                "position": doc.position if doc.position is not None else index + 1,
                "dataset_id": doc.dataset_id,
                "dataset_name": doc.dataset_name,
                "document_id": doc.document_id,
                "document_name": doc.document_name,
                "segment_id": doc.segment_id,
                "score": doc.score,
                "content": doc.content,
            }
            for index, doc in enumerate(self.documents)
        )

    def finish(
        self,
        *,
        answer: str,
        status: MessageStatus,
        error: str | None,
        error_code: str | None,
        moderation_flagged: bool = False,
    ) -> RunOutcome:
        """Assemble the outcome and its ``MessageTraceInfo``."""
        request, spec = self.request, self.request.spec
        end = datetime.now(UTC)
        calls = [r.model_call for r in self.rounds] or self.model_calls
        prompt_tokens = sum(c.prompt_tokens for c in calls)
        answer_tokens = sum(c.completion_tokens for c in calls)
        known = [c.price for c in calls if c.price is not None]
        # One unpriced call makes the total unknown; no call at all costs nothing.
        total_price = sum(known, Decimal(0)) if len(known) == len(calls) else None
        currency = calls[0].currency if calls else "USD"
        provider = self.resolved.provider if self.resolved else spec.model.provider
        model = self.resolved.model if self.resolved else spec.model.name
        ttft = next((c.time_to_first_token for c in calls if c.time_to_first_token is not None), None)
        agent_based = spec.mode == "agent-chat"
        context = request.context
        resources = self.retriever_resources()
        outputs: JsonValue = answer
        message_data = self.message_data(
            answer=answer,
            status=status.value,
            error=error,
            message_tokens=prompt_tokens,
            answer_tokens=answer_tokens,
            total_price=str(total_price) if total_price is not None else None,
            currency=currency,
        )
        trace = MessageTraceInfo(
            message_id=request.message_id,
            message_data=message_data,
            user_session_id=context.user_session_id,
            conversation_model=model,
            message_tokens=prompt_tokens,
            answer_tokens=answer_tokens,
            total_tokens=prompt_tokens + answer_tokens,
            error=error,
            inputs=dict(request.inputs),
            outputs=outputs,
            file_list=(),
            start_time=self.start_time,
            end_time=end,
            message_file_data={
                "ignored_files": request.ignored_files,
                "warning": "files are not supported; they were ignored",
            } if request.ignored_files else None,
            conversation_mode=ConversationMode(spec.mode),
            conversation_id=request.conversation_id,
            ls_provider=provider,
            ls_model_name=model,
            status=status,
            from_end_user_id=context.from_end_user_id,
            from_account_id=context.from_account_id,
            agent_based=agent_based,
            workflow_run_id=None,
            from_source=context.from_source,
            context=context,
            query=request.query,
            model_call=None if agent_based else (self.model_calls[-1] if self.model_calls else None),
            agent_rounds=tuple(self.rounds),
            tool_calls=tuple(self.tools),
            dataset_retrievals=tuple(self.retrievals),
            moderations=tuple(self.moderations),
            suggested_question=self.suggestion,
            total_price=total_price,
            currency=currency,
            time_to_first_token=ttft,
            app_version=request.app_version,
        )
        return RunOutcome(
            answer=answer,
            status=status,
            error=error,
            error_code=error_code,
            trace=trace,
            prompt_tokens=prompt_tokens,
            answer_tokens=answer_tokens,
            total_price=total_price,
            currency=currency,
            latency=(end - self.start_time).total_seconds(),
            provider=provider,
            model=model,
            retriever_resources=resources,
            suggested_questions=self.suggestion.suggested_question if self.suggestion else (),
            thoughts=tuple(self.thoughts),
            moderation_flagged=moderation_flagged,
        )

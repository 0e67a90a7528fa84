"""The seven trace kinds of the seed, as complete, frozen records.

Names follow the seed (Dify's "Integrate Langfuse" page): each record carries every "Trace
Info" and "Metadata" field the seed lists for its kind, with the seed's spelling, plus what
opstrail needs to build a correct tree without ever reading the app database again (who ran it,
the model calls with usage and price, node executions with their own status and error).

How the kinds compose (decisions.md, "Tree shapes"): a run produces one root record,
``MessageTraceInfo`` or ``WorkflowTraceInfo``, that holds the moderation checks, retrievals, tool
calls and suggested questions that happened during that run, so they land in that run's trace.
``GenerateNameTraceInfo`` is a trace of its own, one per conversation. ``FeedbackInfo`` becomes a
score on the trace of the message it rates.

Every datetime is timezone-aware and stored as UTC; a naive datetime raises
``NaiveDatetimeError`` when the record is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from opstrail.tracing.values import JsonValue, normalise_times


class FromSource(StrEnum):
    """Where a run came from: the service API or the console's debug panel."""

    API = "api"
    CONSOLE = "console"


class MessageStatus(StrEnum):
    NORMAL = "normal"
    ERROR = "error"
    STOPPED = "stopped"


class WorkflowRunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    PARTIAL_SUCCEEDED = "partial-succeeded"


class NodeStatus(StrEnum):
    """Status of one node execution. ``exception`` means the node failed and its error
    strategy (fail-branch or default-value) handled it."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXCEPTION = "exception"
    STOPPED = "stopped"


class ConversationMode(StrEnum):
    CHAT = "chat"
    AGENT_CHAT = "agent-chat"
    COMPLETION = "completion"
    ADVANCED_CHAT = "advanced-chat"
    WORKFLOW = "workflow"


class ModerationStage(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class RunContext:
    """Who ran what, where: the fields every kind's metadata repeats.

    ``user_session_id`` is the seed's ``user_id`` source: the end user's own id as the API
    caller passed it (``user``), or the console account id for console runs.
    ``external_trace_id`` is the caller's raw ``X-Trace-Id`` / ``trace_id``, if any.
    """

    app_id: str
    tenant_id: str
    from_source: FromSource
    user_session_id: str | None = None
    from_account_id: str | None = None
    from_end_user_id: str | None = None
    app_name: str | None = None
    environment: str = "production"
    external_trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One invocation of a model, as it happened.

    ``prompt_messages`` is the rendered prompt as chat messages (``[{"role", "content"}]``)
    or a plain string for completion-mode models; ``completion`` is what the model returned.
    ``price`` is the total price in ``currency``; ``input_price``/``output_price`` split it
    when known. ``time_to_first_token`` is seconds from the call's start (streaming only).
    ``prompt_tokens``/``completion_tokens`` are inclusive counts as providers report them;
    ``usage_details`` may add sub-buckets they include (``input_cached_tokens``,
    ``output_reasoning_tokens``: keys starting ``input_``/``output_``), which the builder
    subtracts to send Langfuse exclusive buckets. Other keys (``input``, ``output``,
    ``total``) are ignored by the builder, since they would count tokens twice.
    """

    provider: str
    model: str
    start_time: datetime
    end_time: datetime
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    model_parameters: Mapping[str, JsonValue] = field(default_factory=dict)
    prompt_messages: JsonValue = None
    completion: JsonValue = None
    price: Decimal | None = None
    input_price: Decimal | None = None
    output_price: Decimal | None = None
    currency: str = "USD"
    time_to_first_token: float | None = None
    usage_details: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    streaming: bool = False

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class ModerationTraceInfo:
    """One moderation check (seed: "Used to track conversation moderation").

    ``message_id`` is the id of the message checked; for a workflow run without a message it
    is ``None`` and ``workflow_run_id`` says which run it belongs to (never the app-log id:
    Dify's mix-up put such checks in another trace). ``error`` is set when the check itself
    failed (not when it flagged).
    """

    message_id: str | None
    user_id: str | None
    workflow_app_log_id: str | None
    inputs: Mapping[str, JsonValue]
    message_data: Mapping[str, JsonValue]
    flagged: bool
    action: str
    preset_response: str
    start_time: datetime
    end_time: datetime
    stage: ModerationStage = ModerationStage.INPUT
    query: str = ""
    workflow_run_id: str | None = None
    moderation_type: str = "keywords"
    error: str | None = None

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class SuggestedQuestionTraceInfo:
    """Follow-up questions generated right after an answer, with the real model call.

    ``total_tokens`` is the suggestion call's own token count (not the parent message's).
    ``level`` and ``status_message`` are the seed's fields, derived from this call's outcome.
    """

    message_id: str
    message_data: Mapping[str, JsonValue]
    inputs: JsonValue
    outputs: JsonValue
    start_time: datetime
    end_time: datetime
    total_tokens: int
    status: str
    error: str | None
    from_account_id: str | None
    agent_based: bool
    from_source: FromSource
    model_provider: str
    model_id: str
    suggested_question: tuple[str, ...]
    level: str
    status_message: str | None
    model_call: ModelCall | None = None
    from_end_user_id: str | None = None
    workflow_run_id: str | None = None

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class RetrievedDocument:
    """One chunk returned by a knowledge retrieval."""

    content: str
    score: float | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    document_id: str | None = None
    document_name: str | None = None
    segment_id: str | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class DatasetRetrievalTraceInfo:
    """A knowledge-base retrieval (seed: "Used to track knowledge base retrieval").

    ``warnings`` records what was skipped (an unresolvable dataset id, for example).
    """

    message_id: str | None
    inputs: JsonValue
    documents: tuple[RetrievedDocument, ...]
    start_time: datetime
    end_time: datetime
    message_data: Mapping[str, JsonValue]
    dataset_ids: tuple[str, ...] = ()
    ls_provider: str | None = None
    ls_model_name: str | None = None
    status: str = "normal"
    workflow_run_id: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class ToolTraceInfo:
    """One tool invocation (seed: "Used to track tool invocation").

    ``thought_id`` identifies this call within its message (one per tool call) and
    ``round`` is the agent reasoning round (from 1) that chose it.
    ``time_cost`` is seconds.
    """

    message_id: str
    tool_name: str
    start_time: datetime
    end_time: datetime
    tool_inputs: Mapping[str, JsonValue]
    tool_outputs: JsonValue
    message_data: Mapping[str, JsonValue]
    error: str | None
    inputs: Mapping[str, JsonValue]
    outputs: JsonValue
    tool_config: Mapping[str, JsonValue]
    time_cost: float
    tool_parameters: Mapping[str, JsonValue]
    file_url: str | None
    thought_id: str
    round: int = 1
    message_file_id: str | None = None
    created_by_role: str | None = None
    created_user_id: str | None = None

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class AgentRound:
    """One reasoning round of an agent: the model call that decided what to do next."""

    position: int
    model_call: ModelCall
    thought: str = ""
    tool_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageTraceInfo:
    """A chat, agent-chat or completion message (seed: "For trace llm conversation").

    ``inputs`` are the app's form variables and ``query`` the user's text; ``outputs`` is the
    answer. ``conversation_model`` is the model id that answered (the seed's "Conversation
    model"); the mode is in ``conversation_mode``. ``model_call`` is the answering call of a
    chat or completion app; agent-chat apps have ``agent_rounds`` instead.
    """

    message_id: str
    message_data: Mapping[str, JsonValue]
    user_session_id: str | None
    conversation_model: str
    message_tokens: int
    answer_tokens: int
    total_tokens: int
    error: str | None
    inputs: Mapping[str, JsonValue]
    outputs: JsonValue
    file_list: tuple[str, ...]
    start_time: datetime
    end_time: datetime
    message_file_data: Mapping[str, JsonValue] | None
    conversation_mode: ConversationMode
    # Metadata fields of the seed.
    conversation_id: str | None
    ls_provider: str
    ls_model_name: str
    status: MessageStatus
    from_end_user_id: str | None
    from_account_id: str | None
    agent_based: bool
    workflow_run_id: str | None
    from_source: FromSource
    # What opstrail adds to build a complete tree.
    context: RunContext
    query: str = ""
    model_call: ModelCall | None = None
    agent_rounds: tuple[AgentRound, ...] = ()
    tool_calls: tuple[ToolTraceInfo, ...] = ()
    dataset_retrievals: tuple[DatasetRetrievalTraceInfo, ...] = ()
    moderations: tuple[ModerationTraceInfo, ...] = ()
    suggested_question: SuggestedQuestionTraceInfo | None = None
    total_price: Decimal | None = None
    currency: str = "USD"
    time_to_first_token: float | None = None
    app_version: str | None = None

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class NodeExecution:
    """One node execution of a workflow run, complete when the run ends.

    ``iteration_id``/``loop_id`` are the node-execution ids of the enclosing iteration or loop
    node (unambiguous when iterations nest) and ``*_index`` the 0-based index. ``parallel_id``
    identifies one branch occurrence within the run (unique per run, also inside iterations).
    ``model_calls`` lists every model invocation the node made (an LLM node one, an agent node
    one per round); the ``model_*``, token and price fields summarise them as Dify's
    execution metadata does. ``error_handled`` is true when a fail-branch or default-value
    strategy handled the node's error (status ``exception``).
    """

    id: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    status: NodeStatus
    error: str | None
    inputs: Mapping[str, JsonValue]
    process_data: Mapping[str, JsonValue]
    outputs: Mapping[str, JsonValue]
    start_time: datetime
    end_time: datetime
    elapsed_time: float
    model_provider: str | None = None
    model_name: str | None = None
    model_parameters: Mapping[str, JsonValue] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    total_price: Decimal | None = None
    currency: str | None = None
    time_to_first_token: float | None = None
    iteration_id: str | None = None
    iteration_index: int | None = None
    loop_id: str | None = None
    loop_index: int | None = None
    parallel_id: str | None = None
    parallel_start_node_id: str | None = None
    model_calls: tuple[ModelCall, ...] = ()
    error_strategy: Literal["fail-branch", "default-value"] | None = None
    retry_count: int = 0
    documents: tuple[RetrievedDocument, ...] = ()
    tool_name: str | None = None

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class WorkflowTraceInfo:
    """A workflow or chatflow run (seed: "Tracing workflow and chatflow").

    ``node_executions`` is the complete list, in execution order; exporters never query the
    app database for it. For a chatflow run ``message_id``, ``conversation_id`` and ``query``
    are set and ``conversation_mode`` is ``advanced-chat``.
    """

    workflow_id: str
    conversation_id: str | None
    workflow_run_id: str
    tenant_id: str
    elapsed_time: float
    status: WorkflowRunStatus
    version: str
    total_tokens: int
    file_list: tuple[str, ...]
    triggered_from: Literal["app-run", "debugging"]
    workflow_run_inputs: Mapping[str, JsonValue]
    workflow_run_outputs: Mapping[str, JsonValue]
    error: str | None
    query: str
    workflow_app_log_id: str | None
    message_id: str | None
    start_time: datetime
    end_time: datetime
    node_executions: tuple[NodeExecution, ...]
    context: RunContext
    conversation_mode: ConversationMode = ConversationMode.WORKFLOW
    answer: str | None = None
    moderations: tuple[ModerationTraceInfo, ...] = ()
    suggested_question: SuggestedQuestionTraceInfo | None = None
    total_price: Decimal | None = None
    currency: str = "USD"
    exceptions_count: int = 0

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class GenerateNameTraceInfo:
    """A conversation title generation (seed: "Used to track conversation title
    generation"). ``sequence`` counts title generations of the conversation from 1; the
    first one exports the trace's root, later ones only add a child."""

    conversation_id: str
    inputs: JsonValue
    outputs: str
    start_time: datetime
    end_time: datetime
    tenant_id: str
    context: RunContext
    sequence: int = 1
    model_call: ModelCall | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        normalise_times(self)


@dataclass(frozen=True, slots=True)
class FeedbackInfo:
    """A like, dislike or revoked rating of a message, to become a Langfuse score.

    ``trace_domain_id`` is the domain id whose trace the message lives in: the message id for
    chat apps, the workflow run id for chatflow runs, or the caller's external trace id.
    ``rating`` ``None`` means the rating was revoked (the score is deleted).
    """

    message_id: str
    trace_domain_id: str
    rating: Literal["like", "dislike"] | None
    created_at: datetime
    context: RunContext
    content: str | None = None
    trace_id_is_external: bool = False

    def __post_init__(self) -> None:
        normalise_times(self)


# Records that start a trace of their own (one outbox row each).
RootTraceInfo = MessageTraceInfo | WorkflowTraceInfo | GenerateNameTraceInfo
# Every kind of the seed.
TraceInfo = (
    WorkflowTraceInfo
    | MessageTraceInfo
    | ModerationTraceInfo
    | SuggestedQuestionTraceInfo
    | DatasetRetrievalTraceInfo
    | ToolTraceInfo
    | GenerateNameTraceInfo
)

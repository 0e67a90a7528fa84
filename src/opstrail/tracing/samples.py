"""Public fakes: complete, realistic trace-info records for tests, previews and benchmarks.

Every function returns the same record on every call: ids are UUIDs derived (uuid5) from fixed
names, times are fixed UTC instants. Keyword arguments override what callers most often vary
(ids, start time, the run context, statuses, sizes); for anything else use
``dataclasses.replace`` on the result. Timelines are consistent: children start and end inside
their parent, and node executions follow each other in execution order.

Nothing here reads a clock or does I/O, so tests built on these records are deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

from opstrail.tracing.info import (
    AgentRound,
    ConversationMode,
    DatasetRetrievalTraceInfo,
    FeedbackInfo,
    FromSource,
    GenerateNameTraceInfo,
    MessageStatus,
    MessageTraceInfo,
    ModelCall,
    ModerationStage,
    ModerationTraceInfo,
    NodeExecution,
    NodeStatus,
    RetrievedDocument,
    RunContext,
    SuggestedQuestionTraceInfo,
    ToolTraceInfo,
    WorkflowRunStatus,
    WorkflowTraceInfo,
)
from opstrail.tracing.values import JsonValue

_NAMESPACE: Final = uuid.UUID("0b6f2a4e-3c1d-4e5f-8a9b-7c6d5e4f3a2b")


def sample_uuid(name: str) -> str:
    """Return a fixed UUID string for ``name`` (uuid5 in the samples' namespace)."""
    return str(uuid.uuid5(_NAMESPACE, name))


# Fixed instants and ids every sample uses unless told otherwise.
T0: Final = datetime(2026, 8, 22, 10, 0, 0, tzinfo=UTC)
TENANT_ID: Final = sample_uuid("tenant")
APP_ID: Final = sample_uuid("app:chat")
WORKFLOW_APP_ID: Final = sample_uuid("app:workflow")
ACCOUNT_ID: Final = sample_uuid("account")
END_USER_ID: Final = sample_uuid("end-user")
END_USER_SESSION: Final = "user-42@example.com"
CHAT_MESSAGE_ID: Final = sample_uuid("message:chat")
CHAT_CONVERSATION_ID: Final = sample_uuid("conversation:chat")
COMPLETION_MESSAGE_ID: Final = sample_uuid("message:completion")
COMPLETION_CONVERSATION_ID: Final = sample_uuid("conversation:completion")
AGENT_MESSAGE_ID: Final = sample_uuid("message:agent")
AGENT_CONVERSATION_ID: Final = sample_uuid("conversation:agent")
FLAGGED_MESSAGE_ID: Final = sample_uuid("message:flagged")
WORKFLOW_ID: Final = sample_uuid("workflow")
WORKFLOW_RUN_ID: Final = sample_uuid("workflow-run:linear")
BRANCHING_RUN_ID: Final = sample_uuid("workflow-run:branching")
STOPPED_RUN_ID: Final = sample_uuid("workflow-run:stopped")
CHATFLOW_RUN_ID: Final = sample_uuid("workflow-run:chatflow")
CHATFLOW_MESSAGE_ID: Final = sample_uuid("message:chatflow")
CHATFLOW_CONVERSATION_ID: Final = sample_uuid("conversation:chatflow")

# gpt-4o-mini list prices in USD per token.
_INPUT_PRICE: Final = Decimal("0.00000015")
_OUTPUT_PRICE: Final = Decimal("0.0000006")


def _at(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)


def run_context(
    *,
    app_id: str = APP_ID,
    tenant_id: str = TENANT_ID,
    from_source: FromSource = FromSource.API,
    user_session_id: str | None = END_USER_SESSION,
    from_account_id: str | None = None,
    from_end_user_id: str | None = END_USER_ID,
    app_name: str | None = "Food calorie planner",
    environment: str = "production",
    external_trace_id: str | None = None,
) -> RunContext:
    """A service-API run by an end user (``user-42@example.com``) in production.

    Pass ``from_source=FromSource.CONSOLE`` with ``from_account_id=ACCOUNT_ID``,
    ``from_end_user_id=None`` and ``environment="debug"`` for a console debug run.
    """
    return RunContext(
        app_id=app_id,
        tenant_id=tenant_id,
        from_source=from_source,
        user_session_id=user_session_id,
        from_account_id=from_account_id,
        from_end_user_id=from_end_user_id,
        app_name=app_name,
        environment=environment,
        external_trace_id=external_trace_id,
    )


def console_context(*, app_id: str = APP_ID) -> RunContext:
    """A console debug run by the default account (environment ``debug``)."""
    return run_context(
        app_id=app_id,
        from_source=FromSource.CONSOLE,
        user_session_id=ACCOUNT_ID,
        from_account_id=ACCOUNT_ID,
        from_end_user_id=None,
        environment="debug",
    )


def model_call(
    *,
    start: datetime = T0,
    duration: float = 1.8,
    provider: str = "openai",
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 812,
    completion_tokens: int = 64,
    prompt_messages: JsonValue = None,
    completion: JsonValue = "Grilled chicken salad with lemon dressing (about 420 kcal).",
    model_parameters: Mapping[str, JsonValue] | None = None,
    priced: bool = True,
    currency: str = "USD",
    time_to_first_token: float | None = 0.42,
    usage_details: Mapping[str, int] | None = None,
    error: str | None = None,
) -> ModelCall:
    """One streamed chat-model call at gpt-4o-mini list prices (USD), or unpriced.

    ``prompt_messages`` defaults to a Dify-style prompt (``text`` keys, as Dify stores them).
    """
    if prompt_messages is None:
        prompt_messages = [
            {"role": "system", "text": "You are a nutrition assistant.", "files": []},
            {"role": "user", "text": "What is a good low-calorie lunch?", "files": []},
        ]
    input_price = _INPUT_PRICE * prompt_tokens if priced else None
    output_price = _OUTPUT_PRICE * completion_tokens if priced else None
    price = (
        input_price + output_price if input_price is not None and output_price is not None else None
    )
    return ModelCall(
        provider=provider,
        model=model,
        start_time=start,
        end_time=_at(start, duration),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        model_parameters=dict(model_parameters)
        if model_parameters is not None
        else {"temperature": 0.7, "max_tokens": 512},
        prompt_messages=prompt_messages,
        completion=completion,
        price=price,
        input_price=input_price,
        output_price=output_price,
        currency=currency,
        time_to_first_token=time_to_first_token,
        usage_details=dict(usage_details or {}),
        error=error,
        streaming=time_to_first_token is not None,
    )


def offline_model_call(*, start: datetime = T0, completion: JsonValue = "ok") -> ModelCall:
    """A call to opstrail's free offline model: price exactly 0 USD, not streamed."""
    call = model_call(
        start=start,
        duration=0.01,
        provider="opstrail",
        model="offline",
        prompt_tokens=20,
        completion_tokens=5,
        completion=completion,
        model_parameters={},
        time_to_first_token=None,
    )
    return replace(call, price=Decimal("0"), input_price=Decimal("0"), output_price=Decimal("0"))


def moderation(
    *,
    message_id: str | None = CHAT_MESSAGE_ID,
    start: datetime = T0,
    stage: ModerationStage = ModerationStage.INPUT,
    flagged: bool = False,
    error: str | None = None,
    query: str = "What is a good low-calorie lunch?",
    workflow_run_id: str | None = None,
    workflow_app_log_id: str | None = None,
    user_id: str | None = END_USER_SESSION,
) -> ModerationTraceInfo:
    """One keyword moderation check of a message's input (or output), 50 ms long.

    ``flagged=True`` models a blocked input answered with the preset response;
    ``error`` a check that itself failed (the moderation service was unreachable).
    """
    return ModerationTraceInfo(
        message_id=message_id,
        user_id=user_id,
        workflow_app_log_id=workflow_app_log_id,
        inputs={"query": query} if stage is ModerationStage.INPUT else {"text": query},
        message_data={"id": message_id, "query": query},
        flagged=flagged,
        action="direct_output" if flagged else "",
        preset_response="Sorry, I can't talk about that." if flagged else "",
        start_time=start,
        end_time=_at(start, 0.05),
        stage=stage,
        query=query,
        workflow_run_id=workflow_run_id,
        moderation_type="keywords",
        error=error,
    )


def documents(count: int = 2, *, long_content: bool = False) -> tuple[RetrievedDocument, ...]:
    """Retrieved chunks of the "Nutrition facts" dataset; ``long_content`` makes the first
    one 5,000 characters, longer than the per-document cap."""
    dataset_id = sample_uuid("dataset:nutrition")
    result = []
    for i in range(count):
        content = f"Chunk {i + 1}: a grilled chicken salad has about {400 + 10 * i} kcal."
        if long_content and i == 0:
            content = ("Lorem ipsum dolor sit amet. " * 200)[:5000]
        result.append(
            RetrievedDocument(
                content=content,
                score=round(0.92 - 0.07 * i, 2),
                dataset_id=dataset_id,
                dataset_name="Nutrition facts",
                document_id=sample_uuid(f"document:{i}"),
                document_name=f"nutrition-{i + 1}.md",
                segment_id=sample_uuid(f"segment:{i}"),
                position=i + 1,
            )
        )
    return tuple(result)


def retrieval(
    *,
    message_id: str | None = CHAT_MESSAGE_ID,
    start: datetime = T0,
    count: int = 2,
    long_content: bool = False,
    warnings: tuple[str, ...] = (),
    error: str | None = None,
) -> DatasetRetrievalTraceInfo:
    """A 300 ms knowledge retrieval returning ``count`` chunks of one dataset."""
    docs = documents(count, long_content=long_content)
    return DatasetRetrievalTraceInfo(
        message_id=message_id,
        inputs="What is a good low-calorie lunch?",
        documents=docs,
        start_time=start,
        end_time=_at(start, 0.3),
        message_data={"id": message_id},
        dataset_ids=(sample_uuid("dataset:nutrition"),),
        ls_provider="openai",
        ls_model_name="gpt-4o-mini",
        status="normal",
        error=error,
        warnings=warnings,
    )


def suggested_questions(
    *,
    message_id: str = CHAT_MESSAGE_ID,
    start: datetime = T0,
    from_source: FromSource = FromSource.API,
    workflow_run_id: str | None = None,
    error: str | None = None,
    context: RunContext | None = None,
) -> SuggestedQuestionTraceInfo:
    """Three follow-up questions generated by gpt-4o-mini right after the answer (0.8 s).
    ``context`` (default: the end-user API context) gives the from_* ids."""
    context = context or run_context(from_source=from_source)
    questions = (
        "How much protein does it have?",
        "Can I make it vegetarian?",
        "What dressing is lowest in calories?",
    )
    call = model_call(
        start=start,
        duration=0.8,
        prompt_tokens=230,
        completion_tokens=38,
        completion='["How much protein does it have?", "Can I make it vegetarian?", '
        '"What dressing is lowest in calories?"]',
        model_parameters={"temperature": 0.0, "max_tokens": 256},
        time_to_first_token=None,
        error=error,
    )
    return SuggestedQuestionTraceInfo(
        message_id=message_id,
        message_data={"id": message_id},
        inputs="Grilled chicken salad with lemon dressing (about 420 kcal).",
        outputs=list(questions) if error is None else None,
        start_time=start,
        end_time=_at(start, 0.8),
        total_tokens=call.total_tokens,
        status="normal" if error is None else "error",
        error=error,
        from_account_id=context.from_account_id,
        agent_based=False,
        from_source=from_source,
        model_provider="openai",
        model_id="gpt-4o-mini",
        suggested_question=questions if error is None else (),
        level="DEFAULT" if error is None else "ERROR",
        status_message=error,
        model_call=call,
        from_end_user_id=context.from_end_user_id,
        workflow_run_id=workflow_run_id,
    )


def chat_message(
    *,
    message_id: str = CHAT_MESSAGE_ID,
    conversation_id: str = CHAT_CONVERSATION_ID,
    start: datetime = T0,
    context: RunContext | None = None,
    query: str = "What is a good low-calorie lunch?",
    with_retrieval: bool = True,
    with_moderation: bool = True,
    with_suggestions: bool = True,
    status: MessageStatus = MessageStatus.NORMAL,
    error: str | None = None,
    priced: bool = True,
    currency: str = "USD",
) -> MessageTraceInfo:
    """A chat-app message: input moderation (passes), a dataset retrieval of two chunks, a
    streamed gpt-4o-mini answer (812 + 64 tokens, priced in USD, TTFT 0.42 s) and three
    suggested questions. ``status=MessageStatus.ERROR`` with ``error`` models a failed answer."""
    context = context or run_context()
    failed = status is MessageStatus.ERROR
    call = model_call(
        start=_at(start, 0.4),
        duration=2.0,
        priced=priced,
        currency=currency,
        error=error if failed else None,
        # A refused call (rate limit) spends no tokens and returns nothing.
        prompt_tokens=0 if failed else 812,
        completion_tokens=0 if failed else 64,
        completion=None
        if failed
        else "Grilled chicken salad with lemon dressing (about 420 kcal).",
        time_to_first_token=None if failed else 0.42,
        prompt_messages=[
            {"role": "system", "text": "You are a nutrition assistant.", "files": []},
            {"role": "user", "text": query, "files": []},
        ],
    )
    answer = "" if failed else call.completion
    return MessageTraceInfo(
        message_id=message_id,
        message_data={
            "id": message_id,
            "conversation_id": conversation_id,
            "query": query,
            "answer": answer,
            "status": status.value,
        },
        user_session_id=context.user_session_id,
        conversation_model="gpt-4o-mini",
        message_tokens=call.prompt_tokens,
        answer_tokens=call.completion_tokens,
        total_tokens=call.total_tokens,
        error=error,
        inputs={"diet": "vegetarian-friendly"},
        outputs=answer,
        file_list=(),
        start_time=start,
        end_time=_at(start, 3.3),
        message_file_data=None,
        conversation_mode=ConversationMode.CHAT,
        conversation_id=conversation_id,
        ls_provider="openai",
        ls_model_name="gpt-4o-mini",
        status=status,
        from_end_user_id=context.from_end_user_id,
        from_account_id=context.from_account_id,
        agent_based=False,
        workflow_run_id=None,
        from_source=context.from_source,
        context=context,
        query=query,
        model_call=call,
        dataset_retrievals=(retrieval(message_id=message_id, start=_at(start, 0.05)),)
        if with_retrieval
        else (),
        moderations=(
            moderation(
                message_id=message_id, start=start, query=query, user_id=context.user_session_id
            ),
        )
        if with_moderation
        else (),
        suggested_question=suggested_questions(
            message_id=message_id,
            start=_at(start, 2.45),
            from_source=context.from_source,
            context=context,
        )
        if with_suggestions and status is MessageStatus.NORMAL
        else None,
        total_price=call.price,
        currency=currency,
        time_to_first_token=call.time_to_first_token,
        app_version=sample_uuid("app-model-config:chat"),
    )


def completion_message(
    *,
    message_id: str = COMPLETION_MESSAGE_ID,
    conversation_id: str = COMPLETION_CONVERSATION_ID,
    start: datetime = T0,
    context: RunContext | None = None,
) -> MessageTraceInfo:
    """A completion-app message: form inputs only (no query), a completion-mode model with a
    plain-string prompt and a plain-string answer, not streamed."""
    context = context or run_context(app_name="SQL creator")
    prompt = "Write a SQL query for: monthly revenue per customer in 2025.\nSQL:"
    call = model_call(
        start=_at(start, 0.01),
        duration=1.2,
        model="gpt-3.5-turbo-instruct",
        prompt_tokens=120,
        completion_tokens=48,
        prompt_messages=prompt,
        completion="SELECT customer_id, date_trunc('month', paid_at) AS month, "
        "SUM(amount) FROM payments WHERE paid_at >= '2025-01-01' GROUP BY 1, 2;",
        model_parameters={"temperature": 0.2, "max_tokens": 256},
        time_to_first_token=None,
    )
    return MessageTraceInfo(
        message_id=message_id,
        message_data={"id": message_id, "query": "", "answer": call.completion},
        user_session_id=context.user_session_id,
        conversation_model="gpt-3.5-turbo-instruct",
        message_tokens=call.prompt_tokens,
        answer_tokens=call.completion_tokens,
        total_tokens=call.total_tokens,
        error=None,
        inputs={"task": "monthly revenue per customer in 2025", "dialect": "postgresql"},
        outputs=call.completion,
        file_list=(),
        start_time=start,
        end_time=_at(start, 1.25),
        message_file_data=None,
        conversation_mode=ConversationMode.COMPLETION,
        conversation_id=conversation_id,
        ls_provider="openai",
        ls_model_name="gpt-3.5-turbo-instruct",
        status=MessageStatus.NORMAL,
        from_end_user_id=context.from_end_user_id,
        from_account_id=context.from_account_id,
        agent_based=False,
        workflow_run_id=None,
        from_source=context.from_source,
        context=context,
        query="",
        model_call=call,
        total_price=call.price,
        app_version=sample_uuid("app-model-config:completion"),
    )


def tool_call(
    *,
    message_id: str = AGENT_MESSAGE_ID,
    tool_name: str = "current_time",
    start: datetime = T0,
    round_: int = 1,
    tool_inputs: Mapping[str, JsonValue] | None = None,
    tool_outputs: JsonValue = "2026-08-22 10:00:01 UTC",
    error: str | None = None,
    time_cost: float = 0.12,
) -> ToolTraceInfo:
    """One tool call chosen by agent round ``round_``; ``error`` models a failing tool."""
    thought_id = sample_uuid(f"thought:{message_id}:{tool_name}:{round_}")
    return ToolTraceInfo(
        message_id=message_id,
        tool_name=tool_name,
        start_time=start,
        end_time=_at(start, time_cost),
        tool_inputs=dict(tool_inputs) if tool_inputs is not None else {"timezone": "UTC"},
        tool_outputs=tool_outputs if error is None else "",
        message_data={"id": message_id},
        error=error,
        inputs={"query": "Summarise AAPL and compute the P/E ratio"},
        outputs=None,
        tool_config={"provider_type": "builtin", "provider_id": tool_name},
        time_cost=time_cost,
        tool_parameters={
            name: {"type": "string", "required": False}
            for name in (tool_inputs or {"timezone": ""})
        },
        file_url=None,
        thought_id=thought_id,
        round=round_,
        message_file_id=None,
        created_by_role="end_user",
        created_user_id=END_USER_ID,
    )


def agent_message(
    *,
    message_id: str = AGENT_MESSAGE_ID,
    conversation_id: str = AGENT_CONVERSATION_ID,
    start: datetime = T0,
    context: RunContext | None = None,
) -> MessageTraceInfo:
    """An agent-chat message with two reasoning rounds: round 1 calls ``current_time``
    (succeeds) and ``calculator`` (fails: division by zero); round 2 writes the answer."""
    context = context or run_context(app_name="Investment report")
    query = "What time is it, and what is 10 divided by 0?"
    round1 = model_call(
        start=_at(start, 0.1),
        duration=1.0,
        prompt_tokens=640,
        completion_tokens=52,
        prompt_messages=[
            {"role": "system", "text": "You are an agent with tools.", "files": []},
            {"role": "user", "text": query, "files": []},
        ],
        completion="I will call current_time and calculator.",
        time_to_first_token=0.3,
    )
    time_tool = tool_call(message_id=message_id, start=_at(start, 1.15), round_=1)
    calc_tool = tool_call(
        message_id=message_id,
        tool_name="calculator",
        start=_at(start, 1.3),
        round_=1,
        tool_inputs={"expression": "10 / 0"},
        error="division by zero",
        time_cost=0.02,
    )
    answer = "It is 10:00 UTC. 10 divided by 0 is undefined (the calculator refused it)."
    round2 = model_call(
        start=_at(start, 1.4),
        duration=1.5,
        prompt_tokens=760,
        completion_tokens=41,
        prompt_messages=[
            {"role": "system", "text": "You are an agent with tools.", "files": []},
            {"role": "user", "text": query, "files": []},
            {"role": "tool", "text": "2026-08-22 10:00:01 UTC", "files": []},
            {"role": "tool", "text": "error: division by zero", "files": []},
        ],
        completion=answer,
        time_to_first_token=0.25,
    )
    rounds = (
        AgentRound(
            position=1,
            model_call=round1,
            thought="I need the time and a division.",
            tool_names=("current_time", "calculator"),
        ),
        AgentRound(position=2, model_call=round2, thought="Answer the user."),
    )
    prompt_tokens = round1.prompt_tokens + round2.prompt_tokens
    completion_tokens = round1.completion_tokens + round2.completion_tokens
    return MessageTraceInfo(
        message_id=message_id,
        message_data={"id": message_id, "query": query, "answer": answer},
        user_session_id=context.user_session_id,
        conversation_model="gpt-4o-mini",
        message_tokens=prompt_tokens,
        answer_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        error=None,
        inputs={},
        outputs=answer,
        file_list=(),
        start_time=start,
        end_time=_at(start, 3.0),
        message_file_data=None,
        conversation_mode=ConversationMode.AGENT_CHAT,
        conversation_id=conversation_id,
        ls_provider="openai",
        ls_model_name="gpt-4o-mini",
        status=MessageStatus.NORMAL,
        from_end_user_id=context.from_end_user_id,
        from_account_id=context.from_account_id,
        agent_based=True,
        workflow_run_id=None,
        from_source=context.from_source,
        context=context,
        query=query,
        agent_rounds=rounds,
        tool_calls=(time_tool, calc_tool),
        total_price=sum((r.model_call.price or Decimal("0") for r in rounds), Decimal("0")),
        time_to_first_token=round1.time_to_first_token,
        app_version=sample_uuid("app-model-config:agent"),
    )


def flagged_message(
    *,
    message_id: str = FLAGGED_MESSAGE_ID,
    conversation_id: str = CHAT_CONVERSATION_ID,
    start: datetime = T0,
    context: RunContext | None = None,
) -> MessageTraceInfo:
    """A chat message whose input moderation flagged the query: the preset response is the
    answer and no model is called (zero tokens, no price)."""
    context = context or run_context()
    query = "Tell me how to pick a lock."
    check = moderation(
        message_id=message_id,
        start=start,
        flagged=True,
        query=query,
        user_id=context.user_session_id,
    )
    return MessageTraceInfo(
        message_id=message_id,
        message_data={"id": message_id, "query": query, "answer": check.preset_response},
        user_session_id=context.user_session_id,
        conversation_model="gpt-4o-mini",
        message_tokens=0,
        answer_tokens=0,
        total_tokens=0,
        error=None,
        inputs={},
        outputs=check.preset_response,
        file_list=(),
        start_time=start,
        end_time=_at(start, 0.06),
        message_file_data=None,
        conversation_mode=ConversationMode.CHAT,
        conversation_id=conversation_id,
        ls_provider="openai",
        ls_model_name="gpt-4o-mini",
        status=MessageStatus.NORMAL,
        from_end_user_id=context.from_end_user_id,
        from_account_id=context.from_account_id,
        agent_based=False,
        workflow_run_id=None,
        from_source=context.from_source,
        context=context,
        query=query,
        moderations=(check,),
        total_price=Decimal("0"),
    )


def node_execution(
    *,
    workflow_run_id: str,
    position: int,
    node_type: str,
    title: str,
    start: datetime,
    duration: float = 0.5,
    status: NodeStatus = NodeStatus.SUCCEEDED,
    error: str | None = None,
    inputs: Mapping[str, JsonValue] | None = None,
    outputs: Mapping[str, JsonValue] | None = None,
    predecessor_node_id: str | None = None,
    call: ModelCall | None = None,
    iteration_id: str | None = None,
    iteration_index: int | None = None,
    parallel_id: str | None = None,
    parallel_start_node_id: str | None = None,
    error_strategy: Literal["fail-branch", "default-value"] | None = None,
    docs: tuple[RetrievedDocument, ...] = (),
    tool_name: str | None = None,
    key: str | None = None,
) -> NodeExecution:
    """One node execution of run ``workflow_run_id``; ``call`` makes it an LLM-using node
    (its model, tokens and price are summarised on the node as Dify's metadata does).
    Ids derive from the run id and ``key`` (default: the position)."""
    key = key or str(position)
    node_id = f"{node_type}-{key}"
    end = _at(start, duration)
    return NodeExecution(
        id=sample_uuid(f"{workflow_run_id}:node-execution:{key}"),
        node_id=node_id,
        node_type=node_type,
        title=title,
        index=position,
        predecessor_node_id=predecessor_node_id,
        status=status,
        error=error,
        inputs=dict(inputs or {}),
        process_data={"model_mode": "chat"} if call is not None else {},
        outputs=dict(outputs or {}),
        start_time=start,
        end_time=end,
        elapsed_time=duration,
        model_provider=call.provider if call else None,
        model_name=call.model if call else None,
        model_parameters=dict(call.model_parameters) if call else None,
        prompt_tokens=call.prompt_tokens if call else 0,
        completion_tokens=call.completion_tokens if call else 0,
        total_tokens=call.total_tokens if call else 0,
        total_price=call.price if call else None,
        currency=call.currency if call else None,
        time_to_first_token=call.time_to_first_token if call else None,
        iteration_id=iteration_id,
        iteration_index=iteration_index,
        parallel_id=parallel_id,
        parallel_start_node_id=parallel_start_node_id,
        model_calls=(call,) if call is not None else (),
        error_strategy=error_strategy,
        documents=docs,
        tool_name=tool_name,
    )


def _workflow_info(
    *,
    workflow_run_id: str,
    nodes: tuple[NodeExecution, ...],
    start: datetime,
    status: WorkflowRunStatus,
    error: str | None,
    inputs: Mapping[str, JsonValue],
    outputs: Mapping[str, JsonValue],
    context: RunContext,
    exceptions_count: int = 0,
) -> WorkflowTraceInfo:
    end = max((n.end_time for n in nodes), default=start) + timedelta(milliseconds=10)
    total_tokens = sum(n.total_tokens for n in nodes)
    prices = [n.total_price for n in nodes if n.total_price is not None]
    return WorkflowTraceInfo(
        workflow_id=WORKFLOW_ID,
        conversation_id=None,
        workflow_run_id=workflow_run_id,
        tenant_id=context.tenant_id,
        elapsed_time=(end - start).total_seconds(),
        status=status,
        version="2026-08-01 09:30:00.000000",
        total_tokens=total_tokens,
        file_list=(),
        triggered_from="app-run" if context.from_source is FromSource.API else "debugging",
        workflow_run_inputs=dict(inputs),
        workflow_run_outputs=dict(outputs),
        error=error,
        query="",
        workflow_app_log_id=sample_uuid(f"app-log:{workflow_run_id}"),
        message_id=None,
        start_time=start,
        end_time=end,
        node_executions=nodes,
        context=context,
        total_price=sum(prices, Decimal("0")) if prices else None,
        exceptions_count=exceptions_count,
    )


def workflow_run(
    n_nodes: int = 50,
    *,
    workflow_run_id: str = WORKFLOW_RUN_ID,
    start: datetime = T0,
    context: RunContext | None = None,
    status: WorkflowRunStatus = WorkflowRunStatus.SUCCEEDED,
    node_seconds: float = 0.5,
) -> WorkflowTraceInfo:
    """A linear workflow-app run of ``n_nodes`` nodes (at least 2): start, then repeating
    llm / code / template-transform nodes, then end. Every llm node calls gpt-4o-mini with
    usage and a USD price; the run's totals sum them. ``status`` only sets the run's status
    (every node succeeded)."""
    if n_nodes < 2:
        raise ValueError("a workflow run has at least a start and an end node")
    context = context or run_context(app_id=WORKFLOW_APP_ID, app_name="Article rewriter")
    nodes: list[NodeExecution] = []
    cursor = start
    previous: str | None = None
    kinds = ("llm", "code", "template-transform")
    for position in range(1, n_nodes + 1):
        call: ModelCall | None = None
        if position == 1:
            node_type, title = "start", "Start"
            inputs: dict[str, JsonValue] = {"article": "Dify is an LLM app platform."}
            outputs: dict[str, JsonValue] = dict(inputs)
        elif position == n_nodes:
            node_type, title = "end", "End"
            inputs = {"result": "Rewritten article."}
            outputs = dict(inputs)
        else:
            node_type = kinds[(position - 2) % len(kinds)]
            title = f"{node_type.replace('-', ' ').title()} {position}"
            inputs = {"text": f"draft {position - 1}"}
            outputs = {"text": f"draft {position}"}
            if node_type == "llm":
                call = model_call(
                    start=cursor,
                    duration=node_seconds,
                    prompt_tokens=300 + position,
                    completion_tokens=50,
                    prompt_messages=[
                        {"role": "system", "text": "Rewrite the article.", "files": []},
                        {"role": "user", "text": f"draft {position - 1}", "files": []},
                    ],
                    completion=f"draft {position}",
                    time_to_first_token=min(0.2, node_seconds / 2),
                )
        node = node_execution(
            workflow_run_id=workflow_run_id,
            position=position,
            node_type=node_type,
            title=title,
            start=cursor,
            duration=node_seconds,
            inputs=inputs,
            outputs=outputs,
            predecessor_node_id=previous,
            call=call,
        )
        nodes.append(node)
        previous = node.node_id
        cursor = node.end_time
    return _workflow_info(
        workflow_run_id=workflow_run_id,
        nodes=tuple(nodes),
        start=start,
        status=status,
        error=None,
        inputs={"article": "Dify is an LLM app platform.", "sys.user_id": END_USER_SESSION},
        outputs={"result": "Rewritten article."},
        context=context,
    )


def branching_workflow_run(
    *,
    workflow_run_id: str = BRANCHING_RUN_ID,
    start: datetime = T0,
    context: RunContext | None = None,
    fail_last_node: bool = False,
) -> WorkflowTraceInfo:
    """A workflow with every structure the tree must nest, in order:

    start; question-classifier (an LLM call); if-else; an iteration over 3 items whose
    item 1 fails in its code node and is handled by the fail-branch (status ``exception``,
    then a template node on the fail branch) while items 0 and 2 run code + llm; two parallel
    branches (a knowledge retrieval and a tool node); a parameter-extractor (LLM); a code
    node "Format report"; end. The run ends ``partial-succeeded`` with one handled exception.
    ``fail_last_node=True`` makes "Format report" fail instead: the run is ``failed`` with
    that node's error and has no end node.
    """
    context = context or run_context(app_id=WORKFLOW_APP_ID, app_name="Audit workpaper")
    run = workflow_run_id
    nodes: list[NodeExecution] = []

    def add(node: NodeExecution) -> NodeExecution:
        nodes.append(node)
        return node

    t = start
    s = add(
        node_execution(
            workflow_run_id=run, position=1, node_type="start", title="Start", start=t,
            duration=0.01, inputs={"items": ["alpha", "beta", "gamma"], "topic": "audit"},
            outputs={"items": ["alpha", "beta", "gamma"], "topic": "audit"},
        )
    )  # fmt: skip
    t = s.end_time
    classifier_call = model_call(
        start=t,
        duration=0.6,
        prompt_tokens=210,
        completion_tokens=6,
        prompt_messages=[
            {"role": "system", "text": "Classify the request.", "files": []},
            {"role": "user", "text": "audit", "files": []},
        ],
        completion='{"category_name": "audit"}',
        model_parameters={"temperature": 0.0},
        time_to_first_token=None,
    )
    c = add(
        node_execution(
            workflow_run_id=run, position=2, node_type="question-classifier",
            title="Classify request", start=t, duration=0.6, inputs={"query": "audit"},
            outputs={"class_name": "audit"}, predecessor_node_id=s.node_id,
            call=classifier_call,
        )
    )  # fmt: skip
    t = c.end_time
    branch = add(
        node_execution(
            workflow_run_id=run, position=3, node_type="if-else", title="Has items?",
            start=t, duration=0.01, inputs={"items": ["alpha", "beta", "gamma"]},
            outputs={"result": True, "selected_case_id": "true"},
            predecessor_node_id=c.node_id,
        )
    )  # fmt: skip
    t = branch.end_time
    iteration_start = t
    iteration_key = "iteration"
    iteration_id = sample_uuid(f"{run}:node-execution:{iteration_key}")
    inner: list[NodeExecution] = []
    position = 5
    cursor = t + timedelta(milliseconds=5)
    for index, item in enumerate(("alpha", "beta", "gamma")):
        failing = index == 1
        code = node_execution(
            workflow_run_id=run, position=position, node_type="code", title="Parse item",
            start=cursor, duration=0.1, inputs={"item": item},
            outputs={} if failing else {"parsed": item.upper()},
            status=NodeStatus.EXCEPTION if failing else NodeStatus.SUCCEEDED,
            error="ValueError: cannot parse 'beta'" if failing else None,
            error_strategy="fail-branch" if failing else None,
            iteration_id=iteration_id, iteration_index=index, key=f"parse:{index}",
        )  # fmt: skip
        inner.append(code)
        position += 1
        cursor = code.end_time
        if failing:
            fallback = node_execution(
                workflow_run_id=run, position=position, node_type="template-transform",
                title="Fallback text", start=cursor, duration=0.01, inputs={"item": item},
                outputs={"output": f"{item}: could not be parsed"},
                predecessor_node_id=code.node_id, iteration_id=iteration_id,
                iteration_index=index, key=f"fallback:{index}",
            )  # fmt: skip
            inner.append(fallback)
            cursor = fallback.end_time
        else:
            call = model_call(
                start=cursor,
                duration=0.7,
                prompt_tokens=150 + index,
                completion_tokens=30,
                prompt_messages=[{"role": "user", "text": f"Summarise {item}", "files": []}],
                completion=f"Summary of {item}.",
                time_to_first_token=0.2,
            )
            llm = node_execution(
                workflow_run_id=run, position=position, node_type="llm",
                title="Summarise item", start=cursor, duration=0.7,
                inputs={"item": item}, outputs={"text": f"Summary of {item}."},
                predecessor_node_id=code.node_id, call=call, iteration_id=iteration_id,
                iteration_index=index, key=f"summarise:{index}",
            )  # fmt: skip
            inner.append(llm)
            cursor = llm.end_time
        position += 1
    iteration = node_execution(
        workflow_run_id=run, position=4, node_type="iteration", title="For each item",
        start=iteration_start, duration=(cursor - iteration_start).total_seconds() + 0.005,
        inputs={"iterator_selector": ["alpha", "beta", "gamma"]},
        outputs={"output": ["Summary of alpha.", "beta: could not be parsed",
                            "Summary of gamma."]},
        predecessor_node_id=branch.node_id, key=iteration_key,
    )  # fmt: skip
    # The iteration node's execution is recorded when it finishes, after its inner nodes:
    # Dify's order. Its index (4) still says it started first.
    nodes.extend(inner)
    nodes.append(iteration)
    t = iteration.end_time
    parallel_a = sample_uuid(f"{run}:parallel:retrieval")
    parallel_b = sample_uuid(f"{run}:parallel:tool")
    search = add(
        node_execution(
            workflow_run_id=run, position=position, node_type="knowledge-retrieval",
            title="Search policy", start=t, duration=0.3, inputs={"query": "audit policy"},
            outputs={"result": [d.content for d in documents(2)]},
            predecessor_node_id=iteration.node_id, parallel_id=parallel_a,
            parallel_start_node_id=f"knowledge-retrieval-{position}", docs=documents(2),
        )
    )  # fmt: skip
    position += 1
    clock = add(
        node_execution(
            workflow_run_id=run, position=position, node_type="tool", title="Current time",
            start=t + timedelta(milliseconds=2), duration=0.12, inputs={"timezone": "UTC"},
            outputs={"text": "2026-08-22 10:00:05 UTC"},
            predecessor_node_id=iteration.node_id, parallel_id=parallel_b,
            parallel_start_node_id=f"tool-{position}", tool_name="current_time",
        )
    )  # fmt: skip
    position += 1
    t = max(search.end_time, clock.end_time)
    extractor_call = model_call(
        start=t,
        duration=0.9,
        prompt_tokens=420,
        completion_tokens=24,
        prompt_messages=[
            {"role": "system", "text": "Extract the parameters as JSON.", "files": []},
            {"role": "user", "text": "Audit of 3 items at 10:00 UTC", "files": []},
        ],
        completion='{"item_count": 3, "time": "10:00"}',
        model_parameters={"temperature": 0.0},
        time_to_first_token=None,
    )
    extractor = add(
        node_execution(
            workflow_run_id=run, position=position, node_type="parameter-extractor",
            title="Extract figures", start=t, duration=0.9,
            inputs={"query": "Audit of 3 items at 10:00 UTC"},
            outputs={"item_count": 3, "time": "10:00"}, predecessor_node_id=search.node_id,
            call=extractor_call,
        )
    )  # fmt: skip
    position += 1
    t = extractor.end_time
    report_error = "KeyError: 'total'" if fail_last_node else None
    report = add(
        node_execution(
            workflow_run_id=run, position=position, node_type="code", title="Format report",
            start=t, duration=0.05, inputs={"item_count": 3},
            outputs={} if fail_last_node else {"report": "3 items audited, 1 unparsed."},
            status=NodeStatus.FAILED if fail_last_node else NodeStatus.SUCCEEDED,
            error=report_error, predecessor_node_id=extractor.node_id,
        )
    )  # fmt: skip
    position += 1
    if not fail_last_node:
        add(
            node_execution(
                workflow_run_id=run, position=position, node_type="end", title="End",
                start=report.end_time, duration=0.01,
                inputs={"report": "3 items audited, 1 unparsed."},
                outputs={"report": "3 items audited, 1 unparsed."},
                predecessor_node_id=report.node_id,
            )
        )  # fmt: skip
    return _workflow_info(
        workflow_run_id=run,
        nodes=tuple(nodes),
        start=start,
        status=WorkflowRunStatus.FAILED if fail_last_node else WorkflowRunStatus.PARTIAL_SUCCEEDED,
        error=f"Node Format report run failed: {report_error}" if fail_last_node else None,
        inputs={"items": ["alpha", "beta", "gamma"], "topic": "audit"},
        outputs={} if fail_last_node else {"report": "3 items audited, 1 unparsed."},
        context=context,
        exceptions_count=1,
    )


def failed_workflow_run(
    *, workflow_run_id: str = BRANCHING_RUN_ID, start: datetime = T0
) -> WorkflowTraceInfo:
    """The branching workflow whose last code node fails: run ``failed`` with its error."""
    return branching_workflow_run(workflow_run_id=workflow_run_id, start=start, fail_last_node=True)


def stopped_workflow_run(
    *,
    workflow_run_id: str = STOPPED_RUN_ID,
    start: datetime = T0,
    context: RunContext | None = None,
) -> WorkflowTraceInfo:
    """A workflow run stopped by the user while its second llm node streamed: start and
    the first llm node succeeded, the second llm node is ``stopped``; the run is ``stopped``
    with no outputs."""
    context = context or run_context(app_id=WORKFLOW_APP_ID, app_name="Article rewriter")
    run = workflow_run_id
    first = node_execution(
        workflow_run_id=run, position=1, node_type="start", title="Start", start=start,
        duration=0.01, inputs={"article": "x"}, outputs={"article": "x"},
    )  # fmt: skip
    call = model_call(start=first.end_time, duration=1.0, completion="Draft one.")
    second = node_execution(
        workflow_run_id=run, position=2, node_type="llm", title="Draft", start=first.end_time,
        duration=1.0, inputs={"article": "x"}, outputs={"text": "Draft one."},
        predecessor_node_id=first.node_id, call=call,
    )  # fmt: skip
    partial = model_call(
        start=second.end_time, duration=0.4, completion_tokens=7, completion="Polished dr"
    )
    third = node_execution(
        workflow_run_id=run, position=3, node_type="llm", title="Polish",
        start=second.end_time, duration=0.4, status=NodeStatus.STOPPED,
        inputs={"text": "Draft one."}, outputs={}, predecessor_node_id=second.node_id,
        call=partial,
    )  # fmt: skip
    return _workflow_info(
        workflow_run_id=run,
        nodes=(first, second, third),
        start=start,
        status=WorkflowRunStatus.STOPPED,
        error=None,
        inputs={"article": "x"},
        outputs={},
        context=context,
    )


def chatflow_run(
    *,
    workflow_run_id: str = CHATFLOW_RUN_ID,
    message_id: str = CHATFLOW_MESSAGE_ID,
    conversation_id: str = CHATFLOW_CONVERSATION_ID,
    start: datetime = T0,
    context: RunContext | None = None,
    query: str = "Which expenses need a receipt?",
) -> WorkflowTraceInfo:
    """A chatflow (advanced-chat) run answering one message of a conversation: input
    moderation (passes), start, a knowledge retrieval, an llm node, an answer node, then
    suggested questions. The run is the trace; the message id is kept for feedback."""
    context = context or run_context(app_name="Admin assistant")
    run = workflow_run_id
    answer = "Every expense above 25 EUR needs a receipt."
    check = moderation(
        message_id=message_id, start=start, query=query, user_id=context.user_session_id
    )
    t = check.end_time
    first = node_execution(
        workflow_run_id=run, position=1, node_type="start", title="Start", start=t,
        duration=0.01, inputs={"sys.query": query}, outputs={"sys.query": query},
    )  # fmt: skip
    search = node_execution(
        workflow_run_id=run, position=2, node_type="knowledge-retrieval",
        title="Search handbook", start=first.end_time, duration=0.3,
        inputs={"query": query}, outputs={"result": [d.content for d in documents(2)]},
        predecessor_node_id=first.node_id, docs=documents(2),
    )  # fmt: skip
    call = model_call(
        start=search.end_time,
        duration=1.5,
        prompt_tokens=540,
        completion_tokens=22,
        prompt_messages=[
            {"role": "system", "text": "Answer from the handbook.", "files": []},
            {"role": "user", "text": query, "files": []},
        ],
        completion=answer,
        time_to_first_token=0.35,
    )
    llm = node_execution(
        workflow_run_id=run, position=3, node_type="llm", title="Answer from handbook",
        start=search.end_time, duration=1.5, inputs={"query": query},
        outputs={"text": answer}, predecessor_node_id=search.node_id, call=call,
    )  # fmt: skip
    reply = node_execution(
        workflow_run_id=run, position=4, node_type="answer", title="Answer",
        start=llm.end_time, duration=0.01, inputs={"text": answer},
        outputs={"answer": answer}, predecessor_node_id=llm.node_id,
    )  # fmt: skip
    suggestions = suggested_questions(
        message_id=message_id,
        start=reply.end_time,
        from_source=context.from_source,
        workflow_run_id=run,
        context=context,
    )
    base = _workflow_info(
        workflow_run_id=run,
        nodes=(first, search, llm, reply),
        start=start,
        status=WorkflowRunStatus.SUCCEEDED,
        error=None,
        inputs={
            "sys.query": query,
            "sys.conversation_id": conversation_id,
            "sys.user_id": context.user_session_id,
            "sys.files": [],
        },
        outputs={"answer": answer},
        context=context,
    )
    return replace(
        base,
        conversation_id=conversation_id,
        message_id=message_id,
        query=query,
        answer=answer,
        conversation_mode=ConversationMode.ADVANCED_CHAT,
        workflow_app_log_id=None,
        moderations=(check,),
        suggested_question=suggestions,
        end_time=suggestions.end_time + timedelta(milliseconds=10),
        elapsed_time=(suggestions.end_time + timedelta(milliseconds=10) - start).total_seconds(),
    )


def conversation_name(
    sequence: int = 1,
    *,
    conversation_id: str = CHAT_CONVERSATION_ID,
    start: datetime | None = None,
    context: RunContext | None = None,
    error: str | None = None,
) -> GenerateNameTraceInfo:
    """A conversation-title generation by gpt-4o-mini. Sequence 1 is the title made after
    the first message; sequence 2 a later regeneration (an hour later, another title)."""
    context = context or run_context()
    start = start or _at(T0, 3.5 + 3600 * (sequence - 1))
    title = "Low-calorie lunch ideas" if sequence == 1 else "Vegetarian lunch calories"
    call = model_call(
        start=start,
        duration=0.6,
        prompt_tokens=95,
        completion_tokens=6,
        prompt_messages=[
            {"role": "system", "text": "Name this conversation in a few words.", "files": []},
            {"role": "user", "text": "What is a good low-calorie lunch?", "files": []},
        ],
        completion=title,
        model_parameters={"temperature": 0.2, "max_tokens": 32},
        time_to_first_token=None,
        error=error,
    )
    return GenerateNameTraceInfo(
        conversation_id=conversation_id,
        inputs="What is a good low-calorie lunch?",
        outputs=title if error is None else "",
        start_time=start,
        end_time=call.end_time,
        tenant_id=context.tenant_id,
        context=context,
        sequence=sequence,
        model_call=call,
        error=error,
    )


def feedback(
    rating: Literal["like", "dislike"] | None = "like",
    *,
    message_id: str = CHAT_MESSAGE_ID,
    trace_domain_id: str | None = None,
    content: str | None = None,
    created_at: datetime | None = None,
    context: RunContext | None = None,
    trace_id_is_external: bool = False,
) -> FeedbackInfo:
    """An end user's like (default), dislike or revoked rating (``rating=None``) of the
    chat sample's message, optionally with a comment. For a chatflow message pass
    ``message_id=CHATFLOW_MESSAGE_ID, trace_domain_id=CHATFLOW_RUN_ID``."""
    return FeedbackInfo(
        message_id=message_id,
        trace_domain_id=trace_domain_id or message_id,
        rating=rating,
        created_at=created_at or _at(T0, 60),
        context=context or run_context(),
        content=content,
        trace_id_is_external=trace_id_is_external,
    )

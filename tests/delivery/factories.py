"""Small, complete trace-info records for delivery tests (no app runtime needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from opstrail.tracing.info import (
    ConversationMode,
    FeedbackInfo,
    FromSource,
    MessageStatus,
    MessageTraceInfo,
    ModelCall,
    NodeExecution,
    NodeStatus,
    RunContext,
    WorkflowRunStatus,
    WorkflowTraceInfo,
)

APP_ID = "11111111-1111-4111-8111-111111111111"
TENANT_ID = "22222222-2222-4222-8222-222222222222"


def context(app_id: str = APP_ID) -> RunContext:
    return RunContext(app_id=app_id, tenant_id=TENANT_ID, from_source=FromSource.API)


def message(
    *, app_id: str = APP_ID, message_id: str | None = None, answer: str = "hello"
) -> MessageTraceInfo:
    """A chat message with one model call."""
    start = datetime.now(UTC) - timedelta(seconds=1)
    end = start + timedelta(milliseconds=300)
    call = ModelCall(
        provider="openai",
        model="gpt-4o-mini",
        start_time=start,
        end_time=end,
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        prompt_messages=[{"role": "user", "content": "hi"}],
        completion=answer,
        price=Decimal("0.00012"),
    )
    return MessageTraceInfo(
        message_id=message_id or str(uuid.uuid4()),
        message_data={"answer": answer},
        user_session_id="user-1",
        conversation_model="gpt-4o-mini",
        message_tokens=10,
        answer_tokens=5,
        total_tokens=15,
        error=None,
        inputs={},
        outputs=answer,
        file_list=(),
        start_time=start,
        end_time=end,
        message_file_data=None,
        conversation_mode=ConversationMode.CHAT,
        conversation_id=str(uuid.uuid4()),
        ls_provider="openai",
        ls_model_name="gpt-4o-mini",
        status=MessageStatus.NORMAL,
        from_end_user_id=None,
        from_account_id=None,
        agent_based=False,
        workflow_run_id=None,
        from_source=FromSource.API,
        context=context(app_id),
        query="hi",
        model_call=call,
        total_price=Decimal("0.00012"),
    )


def workflow(*, app_id: str = APP_ID, n_nodes: int = 3) -> WorkflowTraceInfo:
    """A succeeded workflow run with ``n_nodes`` sequential nodes."""
    start = datetime.now(UTC) - timedelta(seconds=2)
    nodes = tuple(
        NodeExecution(
            id=str(uuid.uuid4()),
            node_id=f"node{i}",
            node_type="code",
            title=f"Node {i}",
            index=i + 1,
            predecessor_node_id=f"node{i - 1}" if i else None,
            status=NodeStatus.SUCCEEDED,
            error=None,
            inputs={"x": i},
            process_data={},
            outputs={"y": i * 2},
            start_time=start + timedelta(milliseconds=10 * i),
            end_time=start + timedelta(milliseconds=10 * i + 5),
            elapsed_time=0.005,
        )
        for i in range(n_nodes)
    )
    return WorkflowTraceInfo(
        workflow_id=str(uuid.uuid4()),
        conversation_id=None,
        workflow_run_id=str(uuid.uuid4()),
        tenant_id=TENANT_ID,
        elapsed_time=0.5,
        status=WorkflowRunStatus.SUCCEEDED,
        version="1",
        total_tokens=0,
        file_list=(),
        triggered_from="app-run",
        workflow_run_inputs={"q": "x"},
        workflow_run_outputs={"a": "y"},
        error=None,
        query="",
        workflow_app_log_id=None,
        message_id=None,
        start_time=start,
        end_time=start + timedelta(milliseconds=500),
        node_executions=nodes,
        context=context(app_id),
    )


def feedback(message_id: str, rating: str | None = "like", *, app_id: str = APP_ID) -> FeedbackInfo:
    """A rating of ``message_id`` (``None``: revoked)."""
    return FeedbackInfo(
        message_id=message_id,
        trace_domain_id=message_id,
        rating=rating,  # type: ignore[arg-type]
        created_at=datetime.now(UTC),
        context=context(app_id),
    )

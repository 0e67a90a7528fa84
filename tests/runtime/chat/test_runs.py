"""Runs of the runtime alone (no storage): output moderation, stopping, agent iteration cap,
and the completeness of the trace record."""

from __future__ import annotations

from opstrail.runtime.apps import RunDeps, RunRequest, run_message
from opstrail.runtime.apps.common import AnswerReplaced, RunCompleted, RunEvent
from opstrail.runtime.dsl.model_config import (
    AgentSpec,
    AgentToolSpec,
    AppSpec,
    ModelSpec,
    ModerationSpec,
)
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry
from opstrail.tracing.info import FromSource, MessageStatus, ModerationStage, RunContext

CONTEXT = RunContext(app_id="app-1", tenant_id="t-1", from_source=FromSource.API,
                     user_session_id="user-1", from_end_user_id="eu-1")
DEPS = RunDeps(models=ModelRegistry(ModelOptions()))


def _run(spec: AppSpec, query: str, *, stream: bool = True, should_stop: object = None) -> list[RunEvent]:
    request = RunRequest(spec=spec, message_id="3f1c8a52-0000-4000-8000-000000000001",
                         conversation_id="c-1", inputs={}, query=query, context=CONTEXT,
                         stream=stream, should_stop=should_stop)  # type: ignore[arg-type]
    return list(run_message(request, DEPS))


def _spec(**kwargs: object) -> AppSpec:
    return AppSpec(mode=str(kwargs.pop("mode", "chat")), model=ModelSpec("opstrail", "offline"),
                   **kwargs)  # type: ignore[arg-type]


def test_output_moderation_replaces_flagged_answer() -> None:
    """A flagged answer is replaced by the preset (message_replace) and both checks recorded."""
    moderation = ModerationSpec(enabled=True, keywords=("asked",), inputs_enabled=True,
                                outputs_enabled=True, outputs_preset_response="[removed]")
    events = _run(_spec(moderation=moderation), "hello there")
    assert AnswerReplaced("[removed]") in events
    outcome = events[-1].outcome  # type: ignore[union-attr]
    assert outcome.answer == "[removed]"
    stages = [(m.stage, m.flagged, m.action) for m in outcome.trace.moderations]
    assert stages == [(ModerationStage.INPUT, False, "pass"), (ModerationStage.OUTPUT, True, "overridden")]


def test_stop_keeps_partial_answer_with_status_stopped() -> None:
    """A stop request ends streaming after the first chunk; the message is 'stopped'."""
    events = _run(_spec(), "tell me a long story", should_stop=lambda: True)
    outcome = events[-1].outcome  # type: ignore[union-attr]
    assert outcome.status is MessageStatus.STOPPED
    assert outcome.answer and outcome.trace.model_call is not None
    assert outcome.trace.status is MessageStatus.STOPPED


def test_agent_stops_calling_tools_at_max_iteration() -> None:
    """With max_iteration 1 the only round is offered no tools, so it answers directly."""
    agent = AgentSpec(enabled=True, max_iteration=1, tools=(AgentToolSpec("calculator"),))
    events = _run(_spec(mode="agent-chat", agent=agent), "what is 2+2?")
    outcome = events[-1].outcome  # type: ignore[union-attr]
    assert len(outcome.trace.agent_rounds) == 1 and not outcome.trace.tool_calls
    assert outcome.status is MessageStatus.NORMAL


def test_message_trace_record_is_complete() -> None:
    """Tokens, price, model, TTFT and parameters of the call are on the trace record."""
    events = _run(_spec(), "hi there")
    assert isinstance(events[-1], RunCompleted)
    trace = events[-1].outcome.trace
    call = trace.model_call
    assert call is not None and call.streaming and call.time_to_first_token is not None
    assert trace.total_tokens == call.total_tokens == trace.message_tokens + trace.answer_tokens
    assert trace.total_price == 0 and trace.currency == "USD"
    assert (trace.ls_provider, trace.ls_model_name, trace.conversation_model) == ("opstrail", "offline", "offline")
    assert trace.outputs == events[-1].outcome.answer and trace.query == "hi there"
    assert trace.context is CONTEXT and trace.from_end_user_id == "eu-1"
    assert trace.start_time <= call.start_time <= call.end_time <= trace.end_time

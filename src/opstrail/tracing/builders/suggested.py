"""Suggested follow-up questions: a ``suggested_question`` generation with real usage."""

from __future__ import annotations

from opstrail import ids
from opstrail.tracing.builders.common import observation
from opstrail.tracing.info import SuggestedQuestionTraceInfo
from opstrail.tracing.levels import error_verdict
from opstrail.tracing.tree import Observation, ObservationType
from opstrail.tracing.values import JsonValue


def suggested_observation(
    suggestion: SuggestedQuestionTraceInfo,
    *,
    trace_id: str,
    parent_id: str,
    base_metadata: dict[str, JsonValue],
) -> Observation:
    """The generation that wrote the questions: the answer in, the question list out (JSON,
    never a Python repr); model, usage and cost of that call itself. Without a recorded
    call it still names the model (``model_id``) but carries no usage."""
    # ``_value_`` is what an enum's ``.value`` returns, minus the property call (hot path).
    metadata: dict[str, JsonValue] = {
        **base_metadata,
        "message_id": suggestion.message_id,
        "ls_provider": suggestion.model_provider,
        "ls_model_name": suggestion.model_id,
        "status": suggestion.status,
        "from_end_user_id": suggestion.from_end_user_id,
        "from_account_id": suggestion.from_account_id,
        "workflow_run_id": suggestion.workflow_run_id,
        "from_source": suggestion.from_source._value_,
        "agent_based": suggestion.agent_based,
        "total_tokens": suggestion.total_tokens,
        "question_count": len(suggestion.suggested_question),
    }
    call = suggestion.model_call
    return observation(
        trace_id=trace_id,
        seed=ids.seed_message(suggestion.message_id, "suggested"),
        type_=ObservationType.GENERATION,
        name="suggested_question",
        start=suggestion.start_time,
        end=suggestion.end_time,
        parent_id=parent_id,
        input_=suggestion.inputs,
        output=list(suggestion.suggested_question),
        metadata=metadata,
        verdict=error_verdict(suggestion.error or (call.error if call else None)),
        model_call=call,
        model_name=suggestion.model_id or None,
    )

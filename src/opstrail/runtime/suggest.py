"""Follow-up questions generated right after an answer, with a real model call.

The call's own tokens are recorded (never the parent message's), its failure is recorded as
the suggestion's error and never fails the message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from opstrail.runtime.models.base import ChatMessage, ModelRequest
from opstrail.runtime.models.calls import call_model
from opstrail.runtime.models.registry import ResolvedModel
from opstrail.tracing.info import FromSource, SuggestedQuestionTraceInfo
from opstrail.tracing.values import JsonValue

INSTRUCTION: Final = (
    "Please help me predict the three most likely questions that the human would ask next, "
    "keeping each question under 20 words. Use the same language as the assistant's latest "
    'answer. Answer with a JSON array only, like ["question1","question2","question3"].'
)
SCHEMA: Final = {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3}
MAX_QUESTIONS: Final = 3


@dataclass(frozen=True, slots=True)
class Suggestions:
    questions: tuple[str, ...]
    trace: SuggestedQuestionTraceInfo


def _parse(text: str) -> tuple[str, ...] | None:
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    return tuple(str(q).strip() for q in value if str(q).strip())[:MAX_QUESTIONS]


def suggest_questions(
    resolved: ResolvedModel,
    *,
    query: str,
    answer: str,
    message_id: str,
    message_data: Mapping[str, JsonValue],
    from_source: FromSource,
    from_account_id: str | None,
    from_end_user_id: str | None,
    agent_based: bool,
) -> Suggestions:
    """Ask the model for follow-up questions and record the call."""
    request = ModelRequest(
        provider=resolved.provider,
        model=resolved.model,
        messages=(
            ChatMessage(
                role="system",
                content=f"{INSTRUCTION}\n\nConversation so far:\nHuman: {query}\nAssistant: {answer}",
            ),
            ChatMessage(role="user", content=query),
        ),
        parameters={"temperature": 0, "max_tokens": 256},
        response_schema=SCHEMA,
    )
    outcome = call_model(resolved, request, stream=False)
    error: str | None = None
    questions: tuple[str, ...] = ()
    if outcome.error is not None:
        error = outcome.error.message
    elif outcome.result is not None:
        parsed = _parse(outcome.result.text)
        if parsed is None:
            error = "the model did not return a JSON list of questions"
        else:
            questions = parsed
    record = outcome.record
    trace = SuggestedQuestionTraceInfo(
        message_id=message_id,
        message_data=dict(message_data),
        inputs=query,
        outputs=list(questions),
        start_time=record.start_time,
        end_time=record.end_time,
        total_tokens=record.total_tokens,
        status="error" if error else "normal",
        error=error,
        from_account_id=from_account_id,
        agent_based=agent_based,
        from_source=from_source,
        model_provider=record.provider,
        model_id=record.model,
        suggested_question=questions,
        level="ERROR" if error else "DEFAULT",
        status_message=error,
        model_call=record,
        from_end_user_id=from_end_user_id,
    )
    return Suggestions(questions, trace)

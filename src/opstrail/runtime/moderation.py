"""Keyword moderation of inputs, queries and answers (``sensitive_word_avoidance``).

A check produces a ``ModerationTraceInfo`` whether or not it flags, so the trace shows every
check that ran. Matching is case-insensitive substring matching, as Dify's keywords type.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opstrail.runtime.dsl.model_config import ModerationSpec
from opstrail.tracing.info import ModerationStage, ModerationTraceInfo
from opstrail.tracing.values import JsonValue


def _matches(keywords: tuple[str, ...], texts: list[str]) -> list[str]:
    lowered = [t.lower() for t in texts]
    return [k for k in keywords if any(k.lower() in t for t in lowered)]


def check_input(
    spec: ModerationSpec,
    *,
    inputs: Mapping[str, Any],
    query: str,
    message_id: str,
    user_id: str | None,
    message_data: Mapping[str, JsonValue],
) -> ModerationTraceInfo | None:
    """Check form inputs and the query; ``None`` when input moderation is off.

    A flagged input's ``action`` is ``direct_output``: the run answers ``preset_response``.
    """
    if not (spec.enabled and spec.inputs_enabled):
        return None
    start = datetime.now(UTC)
    texts = [str(v) for v in inputs.values() if isinstance(v, (str, int, float))] + [query]
    matched = _matches(spec.keywords, texts)
    return ModerationTraceInfo(
        message_id=message_id,
        user_id=user_id,
        workflow_app_log_id=None,
        inputs={**{k: _json(v) for k, v in inputs.items()}, "query": query},
        message_data=dict(message_data),
        flagged=bool(matched),
        action="direct_output" if matched else "pass",
        preset_response=spec.inputs_preset_response if matched else "",
        start_time=start,
        end_time=datetime.now(UTC),
        stage=ModerationStage.INPUT,
        query=query,
        moderation_type=spec.type,
    )


def check_output(
    spec: ModerationSpec,
    *,
    answer: str,
    query: str,
    message_id: str,
    user_id: str | None,
    message_data: Mapping[str, JsonValue],
) -> ModerationTraceInfo | None:
    """Check the answer; ``None`` when output moderation is off.

    A flagged answer's ``action`` is ``overridden``: it is replaced by ``preset_response``.
    """
    if not (spec.enabled and spec.outputs_enabled):
        return None
    start = datetime.now(UTC)
    matched = _matches(spec.keywords, [answer])
    return ModerationTraceInfo(
        message_id=message_id,
        user_id=user_id,
        workflow_app_log_id=None,
        inputs={"text": answer},
        message_data=dict(message_data),
        flagged=bool(matched),
        action="overridden" if matched else "pass",
        preset_response=spec.outputs_preset_response if matched else "",
        start_time=start,
        end_time=datetime.now(UTC),
        stage=ModerationStage.OUTPUT,
        query=query,
        moderation_type=spec.type,
    )


def _json(value: Any) -> JsonValue:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

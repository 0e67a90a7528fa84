"""Moderation checks: one ``guardrail`` observation per check under the run's root."""

from __future__ import annotations

from opstrail import ids
from opstrail.tracing.builders.common import observation
from opstrail.tracing.info import ModerationTraceInfo
from opstrail.tracing.levels import moderation_verdict
from opstrail.tracing.tree import Observation, ObservationType
from opstrail.tracing.values import JsonValue


def moderation_seed(check: ModerationTraceInfo, *, run_domain_id: str) -> str:
    """Seed of a check: ``msg:<message_id>:moderation:<stage>``; a workflow run without a
    message uses ``run:<workflow_run_id>:moderation:<stage>`` (never the app-log id)."""
    # ``_value_`` is what an enum's ``.value`` returns, minus the property call (hot path).
    part = f"moderation:{check.stage._value_}"
    if check.message_id:
        return ids.seed_message(check.message_id, part)
    return f"{ids.seed_run(check.workflow_run_id or run_domain_id)}:{part}"


def moderation_observation(
    check: ModerationTraceInfo, *, trace_id: str, parent_id: str, run_domain_id: str
) -> Observation:
    """The ``moderation`` guardrail: the checked inputs in, ``{flagged, action,
    preset_response}`` out; WARNING when flagged, ERROR when the check itself failed.

    Metadata holds the seed's Metadata (``message_id``, ``action``, ``preset_response``) plus
    ``query``, ``stage``, ``moderation_type``, ``user_id`` and ``workflow_app_log_id``.
    """
    output: dict[str, JsonValue] = {
        "flagged": check.flagged,
        "action": check.action,
        "preset_response": check.preset_response,
    }
    metadata: dict[str, JsonValue] = {
        "message_id": check.message_id,
        "action": check.action,
        "preset_response": check.preset_response,
        "query": check.query,
        "stage": check.stage._value_,
        "moderation_type": check.moderation_type,
        "user_id": check.user_id,
        "workflow_app_log_id": check.workflow_app_log_id,
        "flagged": check.flagged,
    }
    if check.workflow_run_id is not None:
        metadata["workflow_run_id"] = check.workflow_run_id
    return observation(
        trace_id=trace_id,
        seed=moderation_seed(check, run_domain_id=run_domain_id),
        type_=ObservationType.GUARDRAIL,
        name="moderation",
        start=check.start_time,
        end=check.end_time,
        parent_id=parent_id,
        input_=dict(check.inputs),
        output=output,
        metadata=metadata,
        verdict=moderation_verdict(check.flagged, check.error, check.action, check.stage._value_),
    )

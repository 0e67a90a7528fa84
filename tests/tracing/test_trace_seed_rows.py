"""One test per row of the seed ("Integrate Langfuse"): each table's field rows, each
"Trace Info" list and each "Metadata" list, for all seven kinds.

Every case returns ``(actual, expected)``; its id names the seed row and what opstrail does
with it. Where opstrail deliberately differs from the seed (docs/mapping.md), the id says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from opstrail import ids
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace
from opstrail.tracing.info import (
    MessageStatus,
    MessageTraceInfo,
    SuggestedQuestionTraceInfo,
    WorkflowRunStatus,
)
from opstrail.tracing.tree import Observation, ObservationType, Trace

from .rendering import dig, usage_of

Check = Callable[[], tuple[Any, Any]]


def _obs(trace: Trace, name: str) -> Observation:
    matches = [o for o in trace.observations if o.name == name]
    assert len(matches) == 1, f"{len(matches)} observations named {name!r}"
    return matches[0]


def _root(trace: Trace) -> Observation:
    root = trace.root
    assert root is not None
    return root


def _generation_tokens(trace: Trace) -> int:
    return sum(o.usage.total for o in trace.observations if o.usage is not None)


# --- Workflow and chatflow ("Tracing workflow and chatflow") -----------------------------

WF = samples.workflow_run(6)
WF_T = build_trace(WF)
FAILED = samples.failed_workflow_run()
FAILED_T = build_trace(FAILED)
CF = samples.chatflow_run()
CF_T = build_trace(CF)

WORKFLOW_ROWS: dict[str, Check] = {
    "id-is-workflow_run_id-not-app_log_id": lambda: (WF_T.id, ids.trace_id(WF.workflow_run_id)),
    "user_id-is-user_session_id": lambda: (WF_T.user_id, WF.context.user_session_id),
    "name-is-workflow_run_id": lambda: (WF_T.name, f"workflow_{WF.workflow_run_id}"),
    "start_time-is-run-start": lambda: (
        (WF_T.timestamp, _root(WF_T).start_time),
        (WF.start_time,) * 2,
    ),
    "end_time-is-run-end-on-root": lambda: (_root(WF_T).end_time, WF.end_time),
    "input-is-run-inputs-on-root-and-trace": lambda: (
        (_root(WF_T).input, WF_T.input),
        (dict(WF.workflow_run_inputs),) * 2,
    ),
    "output-is-run-outputs-on-root-and-trace": lambda: (
        (_root(WF_T).output, WF_T.output),
        (dict(WF.workflow_run_outputs),) * 2,
    ),
    "usage-only-on-generations-summing-to-total_tokens": lambda: (
        (_root(WF_T).usage, _generation_tokens(WF_T), WF_T.metadata["total_tokens"]),
        (None, WF.total_tokens, WF.total_tokens),
    ),
    "metadata-holds-run-metadata": lambda: (WF_T.metadata["workflow_run_id"], WF.workflow_run_id),
    "level-error-on-root-of-failed-run": lambda: (_root(FAILED_T).level.value, "ERROR"),
    "status_message-is-run-error-on-root-only": lambda: (
        (_root(FAILED_T).status_message, _obs(FAILED_T, "Classify request").status_message),
        (FAILED.error, None),
    ),
    "tags-workflow": lambda: (WF_T.tags, ("workflow",)),
    "tags-chatflow-workflow-message-advanced-chat": lambda: (
        CF_T.tags[:3],
        ("workflow", "message", "advanced-chat"),
    ),
    "session_id-none-for-workflow-app": lambda: (WF_T.session_id, None),
    "session_id-is-conversation_id-for-chatflow": lambda: (CF_T.session_id, CF.conversation_id),
    "parent_observation_id-root-has-none-nodes-under-root": lambda: (
        {o.parent_id for o in WF_T.observations[1:]} | {_root(WF_T).parent_id},
        {_root(WF_T).id, None},
    ),
}

WORKFLOW_INFO: dict[str, Check] = {
    "workflow_id": lambda: (WF_T.metadata["workflow_id"], WF.workflow_id),
    "conversation_id": lambda: (
        (CF_T.metadata["conversation_id"], CF_T.session_id),
        (CF.conversation_id,) * 2,
    ),
    "workflow_run_id": lambda: (
        (WF_T.id, WF_T.metadata["workflow_run_id"]),
        (ids.trace_id(WF.workflow_run_id), WF.workflow_run_id),
    ),
    "tenant_id": lambda: (WF_T.metadata["tenant_id"], WF.tenant_id),
    "elapsed_time": lambda: (WF_T.metadata["elapsed_time"], WF.elapsed_time),
    "status-and-level": lambda: (
        (FAILED_T.metadata["status"], _root(FAILED_T).level.value),
        ("failed", "ERROR"),
    ),
    "version": lambda: ((WF_T.version, WF_T.metadata["version"]), (WF.version,) * 2),
    "total_tokens": lambda: (WF_T.metadata["total_tokens"], WF.total_tokens),
    "file_list": lambda: (WF_T.metadata["file_list"], list(WF.file_list)),
    "triggered_from": lambda: (WF_T.metadata["triggered_from"], "app-run"),
    "workflow_run_inputs": lambda: (_root(WF_T).input, dict(WF.workflow_run_inputs)),
    "workflow_run_outputs": lambda: (_root(WF_T).output, dict(WF.workflow_run_outputs)),
    "error": lambda: (_root(FAILED_T).status_message, FAILED.error),
    "query-chatflow-root-input": lambda: (
        (_root(CF_T).input, _root(CF_T).metadata["query"]),
        (CF.query,) * 2,
    ),
    "workflow_app_log_id-metadata-only": lambda: (
        WF_T.metadata["workflow_app_log_id"],
        WF.workflow_app_log_id,
    ),
    "message_id-chatflow-metadata": lambda: (CF_T.metadata["message_id"], CF.message_id),
    "start_time": lambda: (_root(WF_T).start_time, WF.start_time),
    "end_time": lambda: (_root(WF_T).end_time, WF.end_time),
    "workflow_node_executions-one-observation-each": lambda: (
        {o.id for o in WF_T.observations}
        >= {ids.observation_id(ids.seed_node(n.id)) for n in WF.node_executions},
        True,
    ),
}

WORKFLOW_METADATA = (
    "workflow_id", "conversation_id", "workflow_run_id", "tenant_id", "elapsed_time", "status",
    "version", "total_tokens", "file_list", "triggered_from",
)  # fmt: skip


@pytest.mark.parametrize("row", sorted(WORKFLOW_ROWS))
def test_seed_workflow_row(row: str) -> None:
    """Each field row of the workflow/chatflow table maps as docs/mapping.md says."""
    actual, expected = WORKFLOW_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(WORKFLOW_INFO))
def test_seed_workflow_trace_info(field: str) -> None:
    """Each "Workflow Trace Info" field reaches the trace where docs/mapping.md says."""
    actual, expected = WORKFLOW_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", WORKFLOW_METADATA)
def test_seed_workflow_metadata_key_in_trace_metadata(key: str) -> None:
    """Each workflow "Metadata" key is in the trace metadata with the record's value."""
    value = getattr(WF, key)
    expected = list(value) if isinstance(value, tuple) else getattr(value, "value", value)
    assert expected == WF_T.metadata[key]


# --- Message ("For trace llm conversation") ------------------------------------------------

MSG = samples.chat_message()
MSG_T = build_trace(MSG)
MSG_FAILED = samples.chat_message(status=MessageStatus.ERROR, error="Rate limit reached")
MSG_FAILED_T = build_trace(MSG_FAILED)

MESSAGE_ROWS: dict[str, Check] = {
    "id-is-message_id": lambda: (MSG_T.id, ids.trace_id(MSG.message_id)),
    "user_id-is-user_session_id": lambda: (MSG_T.user_id, MSG.context.user_session_id),
    "name-is-message_id": lambda: (MSG_T.name, f"message_{MSG.message_id}"),
    "start_time": lambda: ((MSG_T.timestamp, _root(MSG_T).start_time), (MSG.start_time,) * 2),
    "end_time": lambda: (_root(MSG_T).end_time, MSG.end_time),
    "input-is-query-and-inputs": lambda: (
        MSG_T.input,
        {"query": MSG.query, "inputs": dict(MSG.inputs)},
    ),
    "output-is-answer": lambda: (MSG_T.output, MSG.outputs),
    "usage-on-llm-generation-only": lambda: (
        (
            _root(MSG_T).usage,
            usage_of(_obs(MSG_T, "llm")).input,
            usage_of(_obs(MSG_T, "llm")).output,
        ),
        (None, MSG.message_tokens, MSG.answer_tokens),
    ),
    "metadata": lambda: (MSG_T.metadata["message_id"], MSG.message_id),
    "level-error-on-root": lambda: (_root(MSG_FAILED_T).level.value, "ERROR"),
    "status_message-is-error": lambda: (_root(MSG_FAILED_T).status_message, MSG_FAILED.error),
    "tags-message-and-conversation_mode": lambda: (MSG_T.tags[:2], ("message", "chat")),
    "session_id-is-conversation_id": lambda: (MSG_T.session_id, MSG.conversation_id),
    "parent_observation_id-none-on-root-llm-under-root": lambda: (
        (_root(MSG_T).parent_id, _obs(MSG_T, "llm").parent_id),
        (None, _root(MSG_T).id),
    ),
}

MESSAGE_INFO: dict[str, Check] = {
    "message_id": lambda: (
        (MSG_T.id, MSG_T.metadata["message_id"]),
        (ids.trace_id(MSG.message_id), MSG.message_id),
    ),
    "message_data-root-metadata": lambda: (
        _root(MSG_T).metadata["message_data"],
        dict(MSG.message_data),
    ),
    "user_session_id-user_id": lambda: (MSG_T.user_id, MSG.user_session_id),
    "conversation_model-root-metadata": lambda: (
        _root(MSG_T).metadata["conversation_model"],
        MSG.conversation_model,
    ),
    "message_tokens": lambda: (
        (_root(MSG_T).metadata["message_tokens"], usage_of(_obs(MSG_T, "llm")).input),
        (MSG.message_tokens,) * 2,
    ),
    "answer_tokens": lambda: (
        (_root(MSG_T).metadata["answer_tokens"], usage_of(_obs(MSG_T, "llm")).output),
        (MSG.answer_tokens,) * 2,
    ),
    "total_tokens": lambda: (
        (MSG_T.metadata["total_tokens"], usage_of(_obs(MSG_T, "llm")).total),
        (MSG.total_tokens,) * 2,
    ),
    "error": lambda: (_root(MSG_FAILED_T).status_message, MSG_FAILED.error),
    "inputs": lambda: (dig(_root(MSG_T).input, "inputs"), dict(MSG.inputs)),
    "outputs": lambda: (_root(MSG_T).output, MSG.outputs),
    "file_list-root-metadata": lambda: (_root(MSG_T).metadata["file_list"], list(MSG.file_list)),
    "start_time": lambda: (_root(MSG_T).start_time, MSG.start_time),
    "end_time": lambda: (_root(MSG_T).end_time, MSG.end_time),
    "message_file_data-root-metadata": lambda: (
        _root(MSG_T).metadata["message_file_data"],
        MSG.message_file_data,
    ),
    "conversation_mode-tag-and-metadata": lambda: (
        (MSG_T.tags[1], MSG_T.metadata["conversation_mode"]),
        ("chat", "chat"),
    ),
}

MESSAGE_METADATA = (
    "conversation_id", "ls_provider", "ls_model_name", "status", "from_end_user_id",
    "from_account_id", "agent_based", "workflow_run_id", "from_source", "message_id",
)  # fmt: skip


@pytest.mark.parametrize("row", sorted(MESSAGE_ROWS))
def test_seed_message_row(row: str) -> None:
    """Each field row of the message table maps as docs/mapping.md says."""
    actual, expected = MESSAGE_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(MESSAGE_INFO))
def test_seed_message_trace_info(field: str) -> None:
    """Each "Message Trace Info" field reaches the trace where docs/mapping.md says."""
    actual, expected = MESSAGE_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", MESSAGE_METADATA)
def test_seed_message_metadata_key_in_trace_metadata(key: str) -> None:
    """Each message "Metadata" key is in the trace metadata with the record's value."""
    value = getattr(MSG, key)
    assert getattr(value, "value", value) == MSG_T.metadata[key]


def test_seed_message_row_session_id_is_conversation_id() -> None:
    """The message trace's session is the conversation (the seed's own example name)."""
    assert MSG.conversation_id == MSG_T.session_id


# --- Moderation ------------------------------------------------------------------------------

FLAG = samples.flagged_message()
FLAG_T = build_trace(FLAG)
CHECK = FLAG.moderations[0]
GUARD = _obs(FLAG_T, "moderation")

MODERATION_ROWS: dict[str, Check] = {
    "user_id-trace-user-and-metadata": lambda: (
        (FLAG_T.user_id, GUARD.metadata["user_id"]),
        (FLAG.context.user_session_id, CHECK.user_id),
    ),
    "name-moderation-guardrail": lambda: (
        (GUARD.name, GUARD.type),
        ("moderation", ObservationType.GUARDRAIL),
    ),
    "start_time": lambda: (GUARD.start_time, CHECK.start_time),
    "end_time": lambda: (GUARD.end_time, CHECK.end_time),
    "input-is-checked-inputs": lambda: (GUARD.input, dict(CHECK.inputs)),
    "output-flagged-action-preset_response": lambda: (
        GUARD.output,
        {"flagged": True, "action": CHECK.action, "preset_response": CHECK.preset_response},
    ),
    "metadata": lambda: (GUARD.metadata["message_id"], CHECK.message_id),
    "tags-moderation": lambda: ("moderation" in FLAG_T.tags, True),
    "parent_observation_id-is-message-root": lambda: (
        GUARD.parent_id,
        ids.observation_id(ids.seed_message(FLAG.message_id, "root")),
    ),
}

MODERATION_INFO: dict[str, Check] = {
    "message_id": lambda: (
        (GUARD.metadata["message_id"], FLAG_T.id),
        (CHECK.message_id, ids.trace_id(FLAG.message_id)),
    ),
    "user_id": lambda: (GUARD.metadata["user_id"], CHECK.user_id),
    "workflow_app_log_id-metadata-not-trace": lambda: (
        GUARD.metadata["workflow_app_log_id"],
        CHECK.workflow_app_log_id,
    ),
    "inputs": lambda: (GUARD.input, dict(CHECK.inputs)),
    "message_data-once-on-root": lambda: ("message_data" in _root(FLAG_T).metadata, True),
    "flagged-output-and-warning": lambda: (
        (dig(GUARD.output, "flagged"), GUARD.level.value),
        (True, "WARNING"),
    ),
    "action": lambda: (dig(GUARD.output, "action"), CHECK.action),
    "preset_response": lambda: (dig(GUARD.output, "preset_response"), CHECK.preset_response),
    "start_time": lambda: (GUARD.start_time, CHECK.start_time),
    "end_time": lambda: (GUARD.end_time, CHECK.end_time),
}


@pytest.mark.parametrize("row", sorted(MODERATION_ROWS))
def test_seed_moderation_row(row: str) -> None:
    """Each field row of the moderation table maps as docs/mapping.md says."""
    actual, expected = MODERATION_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(MODERATION_INFO))
def test_seed_moderation_trace_info(field: str) -> None:
    """Each moderation "Trace Info" field reaches the guardrail where docs/mapping.md says."""
    actual, expected = MODERATION_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", ["message_id", "action", "preset_response"])
def test_seed_moderation_metadata_key(key: str) -> None:
    """Each moderation "Metadata" key is in the guardrail's metadata."""
    assert getattr(CHECK, key) == GUARD.metadata[key]


# --- Suggested questions -----------------------------------------------------------------


def _suggestion(info: MessageTraceInfo) -> SuggestedQuestionTraceInfo:
    assert info.suggested_question is not None and info.suggested_question.model_call
    return info.suggested_question


SUG = _suggestion(MSG)
SUG_O = _obs(MSG_T, "suggested_question")

SUGGESTED_ROWS: dict[str, Check] = {
    "user_id-trace-user": lambda: (MSG_T.user_id, MSG.context.user_session_id),
    "name-suggested_question-generation": lambda: (
        (SUG_O.name, SUG_O.type),
        ("suggested_question", ObservationType.GENERATION),
    ),
    "start_time": lambda: (SUG_O.start_time, SUG.start_time),
    "end_time": lambda: (SUG_O.end_time, SUG.end_time),
    "input": lambda: (SUG_O.input, SUG.inputs),
    "output-json-list-not-repr": lambda: (SUG_O.output, list(SUG.suggested_question)),
    "metadata": lambda: (SUG_O.metadata["message_id"], SUG.message_id),
    "tags-suggested_question": lambda: ("suggested_question" in MSG_T.tags, True),
    "parent_observation_id-is-message-root": lambda: (SUG_O.parent_id, _root(MSG_T).id),
}

SUGGESTED_INFO: dict[str, Check] = {
    "message_id": lambda: (SUG_O.metadata["message_id"], SUG.message_id),
    "message_data-once-on-root": lambda: ("message_data" in SUG_O.metadata, False),
    "inputs": lambda: (SUG_O.input, SUG.inputs),
    "outputs": lambda: (SUG_O.output, list(SUG.suggested_question)),
    "start_time": lambda: (SUG_O.start_time, SUG.start_time),
    "end_time": lambda: (SUG_O.end_time, SUG.end_time),
    "total_tokens-own-call-usage": lambda: (
        (SUG_O.metadata["total_tokens"], usage_of(SUG_O).total),
        (SUG.total_tokens,) * 2,
    ),
    "status": lambda: (SUG_O.metadata["status"], SUG.status),
    "error-level-and-status_message": lambda: (
        (SUG_O.level.value, SUG_O.status_message),
        ("DEFAULT", None),
    ),
    "from_account_id": lambda: (SUG_O.metadata["from_account_id"], SUG.from_account_id),
    "agent_based": lambda: (SUG_O.metadata["agent_based"], SUG.agent_based),
    "from_source": lambda: (SUG_O.metadata["from_source"], SUG.from_source.value),
    "model_provider": lambda: (SUG_O.metadata["ls_provider"], SUG.model_provider),
    "model_id-is-model": lambda: (SUG_O.model, SUG.model_id),
    "suggested_question": lambda: (SUG_O.output, list(SUG.suggested_question)),
    "level": lambda: (SUG_O.level.value, SUG.level),
    "status_message": lambda: (SUG_O.status_message, SUG.status_message),
}

SUGGESTED_METADATA = (
    "message_id", "ls_provider", "ls_model_name", "status", "from_end_user_id",
    "from_account_id", "workflow_run_id", "from_source",
)  # fmt: skip


@pytest.mark.parametrize("row", sorted(SUGGESTED_ROWS))
def test_seed_suggested_question_row(row: str) -> None:
    """Each field row of the suggested-question table maps as docs/mapping.md says."""
    actual, expected = SUGGESTED_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(SUGGESTED_INFO))
def test_seed_suggested_question_trace_info(field: str) -> None:
    """Each suggested-question "Trace Info" field lands where docs/mapping.md says."""
    actual, expected = SUGGESTED_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", SUGGESTED_METADATA)
def test_seed_suggested_question_metadata_key(key: str) -> None:
    """Each suggested-question "Metadata" key is in the generation's metadata."""
    assert key in SUG_O.metadata


def test_seed_suggested_question_usage_is_tokens_of_its_own_call() -> None:
    """Usage is the suggestion call's tokens (not characters, not the parent message's)."""
    assert SUG.model_call is not None
    assert (SUG.model_call.prompt_tokens, SUG.model_call.completion_tokens) == (
        usage_of(SUG_O).input,
        usage_of(SUG_O).output,
    )


# --- Dataset retrieval -------------------------------------------------------------------

RET = MSG.dataset_retrievals[0]
RET_O = _obs(MSG_T, "dataset_retrieval")

RETRIEVAL_ROWS: dict[str, Check] = {
    "user_id-trace-user": lambda: (MSG_T.user_id, MSG.context.user_session_id),
    "name-dataset_retrieval-retriever": lambda: (
        (RET_O.name, RET_O.type),
        ("dataset_retrieval", ObservationType.RETRIEVER),
    ),
    "start_time": lambda: (RET_O.start_time, RET.start_time),
    "end_time": lambda: (RET_O.end_time, RET.end_time),
    "input-is-query": lambda: (RET_O.input, RET.inputs),
    "output-is-documents": lambda: (
        [d["content"] for d in dig(RET_O.output, "documents")],
        [d.content for d in RET.documents],
    ),
    "metadata": lambda: (RET_O.metadata["message_id"], RET.message_id),
    "tags-dataset_retrieval": lambda: ("dataset_retrieval" in MSG_T.tags, True),
    "parent_observation_id-is-message-root": lambda: (RET_O.parent_id, _root(MSG_T).id),
}

RETRIEVAL_INFO: dict[str, Check] = {
    "message_id": lambda: (RET_O.metadata["message_id"], RET.message_id),
    "inputs": lambda: (RET_O.input, RET.inputs),
    "documents": lambda: (len(dig(RET_O.output, "documents")), len(RET.documents)),
    "start_time": lambda: (RET_O.start_time, RET.start_time),
    "end_time": lambda: (RET_O.end_time, RET.end_time),
    "message_data-once-on-root": lambda: ("message_data" in RET_O.metadata, False),
}

RETRIEVAL_METADATA = (
    "message_id", "ls_provider", "ls_model_name", "status", "from_end_user_id",
    "from_account_id", "agent_based", "workflow_run_id", "from_source",
)  # fmt: skip


@pytest.mark.parametrize("row", sorted(RETRIEVAL_ROWS))
def test_seed_dataset_retrieval_row(row: str) -> None:
    """Each field row of the dataset-retrieval table maps as docs/mapping.md says."""
    actual, expected = RETRIEVAL_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(RETRIEVAL_INFO))
def test_seed_dataset_retrieval_trace_info(field: str) -> None:
    """Each "Dataset Retrieval Trace Info" field lands where docs/mapping.md says."""
    actual, expected = RETRIEVAL_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", RETRIEVAL_METADATA)
def test_seed_dataset_retrieval_metadata_key(key: str) -> None:
    """Each dataset-retrieval "Metadata" key is in the retriever's metadata."""
    assert key in RET_O.metadata


# --- Tool --------------------------------------------------------------------------------

AGENT = samples.agent_message()
AGENT_T = build_trace(AGENT)
TOOL = AGENT.tool_calls[1]  # the failing calculator call
TOOL_O = _obs(AGENT_T, TOOL.tool_name)

TOOL_ROWS: dict[str, Check] = {
    "user_id-trace-user": lambda: (AGENT_T.user_id, AGENT.context.user_session_id),
    "name-is-tool_name": lambda: (
        (TOOL_O.name, TOOL_O.type),
        (TOOL.tool_name, ObservationType.TOOL),
    ),
    "start_time": lambda: (TOOL_O.start_time, TOOL.start_time),
    "end_time": lambda: (TOOL_O.end_time, TOOL.end_time),
    "input-is-tool_inputs-not-message-inputs": lambda: (TOOL_O.input, dict(TOOL.tool_inputs)),
    "output-is-tool_outputs": lambda: (TOOL_O.output, TOOL.tool_outputs),
    "metadata": lambda: (TOOL_O.metadata["tool_name"], TOOL.tool_name),
    "tags-tool-and-tool_name": lambda: ({"tool", TOOL.tool_name} <= set(AGENT_T.tags), True),
    "parent_observation_id-is-agent": lambda: (TOOL_O.parent_id, _obs(AGENT_T, "agent").id),
}

TOOL_INFO: dict[str, Check] = {
    "message_id": lambda: (TOOL_O.metadata["message_id"], TOOL.message_id),
    "tool_name": lambda: (TOOL_O.name, TOOL.tool_name),
    "start_time": lambda: (TOOL_O.start_time, TOOL.start_time),
    "end_time": lambda: (TOOL_O.end_time, TOOL.end_time),
    "tool_inputs": lambda: (TOOL_O.input, dict(TOOL.tool_inputs)),
    "tool_outputs": lambda: (TOOL_O.output, TOOL.tool_outputs),
    "message_data-once-on-root": lambda: ("message_data" in TOOL_O.metadata, False),
    "error-level-error-and-status_message": lambda: (
        (TOOL_O.level.value, TOOL_O.status_message),
        ("ERROR", TOOL.error),
    ),
    "inputs-message-inputs-on-root": lambda: (dig(_root(AGENT_T).input, "query"), AGENT.query),
    "outputs-message-answer-on-root": lambda: (_root(AGENT_T).output, AGENT.outputs),
    "tool_config": lambda: (TOOL_O.metadata["tool_config"], dict(TOOL.tool_config)),
    "time_cost": lambda: (TOOL_O.metadata["time_cost"], TOOL.time_cost),
    "tool_parameters": lambda: (TOOL_O.metadata["tool_parameters"], dict(TOOL.tool_parameters)),
    "file_url": lambda: (TOOL_O.metadata["file_url"], TOOL.file_url),
}

TOOL_METADATA = (
    "message_id", "tool_name", "tool_inputs", "tool_outputs", "tool_config", "time_cost",
    "error", "tool_parameters", "message_file_id", "created_by_role", "created_user_id",
)  # fmt: skip


@pytest.mark.parametrize("row", sorted(TOOL_ROWS))
def test_seed_tool_row(row: str) -> None:
    """Each field row of the tool table maps as docs/mapping.md says."""
    actual, expected = TOOL_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(TOOL_INFO))
def test_seed_tool_trace_info(field: str) -> None:
    """Each "Tool Trace Info" field lands where docs/mapping.md says."""
    actual, expected = TOOL_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", TOOL_METADATA)
def test_seed_tool_metadata_key(key: str) -> None:
    """Each tool "Metadata" key is in the tool observation's metadata with its value."""
    value = getattr(TOOL, key)
    assert (dict(value) if isinstance(value, dict) else value) == TOOL_O.metadata[key]


# --- Conversation title ("generate_name") ------------------------------------------------

NAME1 = samples.conversation_name(1)
NAME1_T = build_trace(NAME1)
NAME1_CHILD = NAME1_T.observations[1]

GENERATE_NAME_ROWS: dict[str, Check] = {
    "user_id-trace-user": lambda: (NAME1_T.user_id, NAME1.context.user_session_id),
    "name-generate_name": lambda: (
        (NAME1_T.name, _root(NAME1_T).name, NAME1_CHILD.name),
        ("generate_name",) * 3,
    ),
    "start_time": lambda: ((NAME1_T.timestamp, NAME1_CHILD.start_time), (NAME1.start_time,) * 2),
    "end_time": lambda: (NAME1_CHILD.end_time, NAME1.end_time),
    "input": lambda: ((_root(NAME1_T).input, NAME1_T.input), (NAME1.inputs,) * 2),
    "output-is-title": lambda: ((_root(NAME1_T).output, NAME1_CHILD.output), (NAME1.outputs,) * 2),
    "metadata": lambda: (NAME1_T.metadata["conversation_id"], NAME1.conversation_id),
    "tags-generate_name": lambda: (NAME1_T.tags, ("generate_name",)),
}

GENERATE_NAME_INFO: dict[str, Check] = {
    "conversation_id-trace-id-and-session": lambda: (
        (NAME1_T.id, NAME1_T.session_id),
        (ids.trace_id(ids.seed_conversation_root(NAME1.conversation_id)), NAME1.conversation_id),
    ),
    "inputs": lambda: (_root(NAME1_T).input, NAME1.inputs),
    "outputs": lambda: (NAME1_CHILD.output, NAME1.outputs),
    "start_time": lambda: (NAME1_CHILD.start_time, NAME1.start_time),
    "end_time": lambda: (NAME1_CHILD.end_time, NAME1.end_time),
    "tenant_id": lambda: (NAME1_T.metadata["tenant_id"], NAME1.tenant_id),
}


@pytest.mark.parametrize("row", sorted(GENERATE_NAME_ROWS))
def test_seed_generate_name_row(row: str) -> None:
    """Each field row of the title-generation table maps as docs/mapping.md says."""
    actual, expected = GENERATE_NAME_ROWS[row]()
    assert expected == actual


@pytest.mark.parametrize("field", sorted(GENERATE_NAME_INFO))
def test_seed_generate_name_trace_info(field: str) -> None:
    """Each "Generate Name Trace Info" field lands where docs/mapping.md says."""
    actual, expected = GENERATE_NAME_INFO[field]()
    assert expected == actual


@pytest.mark.parametrize("key", ["conversation_id", "tenant_id"])
def test_seed_generate_name_metadata_key(key: str) -> None:
    """Each title "Metadata" key is in the trace metadata."""
    assert getattr(NAME1, key) == NAME1_T.metadata[key]


def test_seed_workflow_row_status_partial_succeeded_is_warning() -> None:
    """A partial-succeeded run's root is WARNING, not ERROR (Dify marks it ERROR)."""
    trace = build_trace(samples.branching_workflow_run())
    assert samples.branching_workflow_run().status is WorkflowRunStatus.PARTIAL_SUCCEEDED
    assert _root(trace).level.value == "WARNING"

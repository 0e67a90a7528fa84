"""Steps shared by chat, agent-chat and completion runs: moderation, retrieval, suggestions."""

from __future__ import annotations

from datetime import UTC, datetime

from opstrail.errors import RuntimeFailure
from opstrail.runtime import moderation
from opstrail.runtime.apps.common import RunDeps, RunRecorder
from opstrail.runtime.models.registry import ResolvedModel
from opstrail.runtime.suggest import suggest_questions
from opstrail.tracing.info import DatasetRetrievalTraceInfo, ModerationTraceInfo


def moderate_input(recorder: RunRecorder) -> ModerationTraceInfo | None:
    """Run input moderation and record it; returns the check (flagged or not) or ``None``."""
    request = recorder.request
    check = moderation.check_input(
        request.spec.moderation,
        inputs=request.inputs,
        query=request.query,
        message_id=request.message_id,
        user_id=recorder.user_id,
        message_data=recorder.message_data(),
    )
    if check is not None:
        recorder.moderations.append(check)
    return check


def moderate_output(recorder: RunRecorder, answer: str) -> ModerationTraceInfo | None:
    """Run output moderation on ``answer`` and record it."""
    request = recorder.request
    check = moderation.check_output(
        request.spec.moderation,
        answer=answer,
        query=request.query,
        message_id=request.message_id,
        user_id=recorder.user_id,
        message_data=recorder.message_data(),
    )
    if check is not None:
        recorder.moderations.append(check)
    return check


def retrieval_query(recorder: RunRecorder) -> str:
    """The text to search: the query, or for completion apps the configured form variable."""
    request = recorder.request
    spec = request.spec
    if spec.mode == "completion":
        variable = spec.dataset_query_variable
        if variable and variable in request.inputs:
            return str(request.inputs[variable] or "")
        return request.query
    return request.query


def retrieve(recorder: RunRecorder, deps: RunDeps) -> str:
    """Search the app's datasets, record the retrieval, and return the context text."""
    request = recorder.request
    spec = request.spec.datasets
    if not spec.dataset_ids:
        return ""
    query = retrieval_query(recorder)
    start = datetime.now(UTC)
    warnings: list[str] = []
    error: str | None = None
    documents = []
    if deps.retriever is None:
        warnings.append("no retriever is available; nothing was retrieved")
    elif not query.strip():
        warnings.append("the retrieval query is empty; nothing was retrieved")
    else:
        top_k = spec.top_k if spec.retrieval_model == "multiple" else min(spec.top_k, 4)
        try:
            found, found_warnings = deps.retriever.retrieve(
                query, spec.dataset_ids, top_k=top_k, score_threshold=spec.score_threshold
            )
            documents = list(found)
            warnings.extend(found_warnings)
        except RuntimeFailure as exc:
            error = exc.message
    recorder.documents.extend(documents)
    recorder.retrievals.append(
        DatasetRetrievalTraceInfo(
            message_id=request.message_id,
            inputs=query,
            documents=tuple(documents),
            start_time=start,
            end_time=datetime.now(UTC),
            message_data=recorder.message_data(),
            dataset_ids=tuple(spec.dataset_ids),
            ls_provider=request.spec.model.provider,
            ls_model_name=request.spec.model.name,
            status="error" if error else "normal",
            error=error,
            warnings=tuple(warnings),
        )
    )
    return "\n\n".join(doc.content for doc in documents)


def suggest(recorder: RunRecorder, resolved: ResolvedModel, answer: str) -> None:
    """Generate follow-up questions when the app asks for them, and record the call."""
    request = recorder.request
    if not request.spec.suggested_questions_after_answer:
        return
    context = request.context
    result = suggest_questions(
        resolved,
        query=request.query,
        answer=answer,
        message_id=request.message_id,
        message_data=recorder.message_data(answer=answer),
        from_source=context.from_source,
        from_account_id=context.from_account_id,
        from_end_user_id=context.from_end_user_id,
        agent_based=request.spec.mode == "agent-chat",
    )
    recorder.suggestion = result.trace

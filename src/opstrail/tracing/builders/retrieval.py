"""Knowledge retrieval: a ``retriever`` observation with capped documents."""

from __future__ import annotations

from collections.abc import Iterable

from opstrail.tracing.builders.common import observation
from opstrail.tracing.info import DatasetRetrievalTraceInfo, RetrievedDocument
from opstrail.tracing.levels import Verdict, error_verdict
from opstrail.tracing.limits import DOCUMENT_CAP_CHARS, TRUNCATION_METADATA_KEY, truncate_chars
from opstrail.tracing.tree import Level, Observation, ObservationType
from opstrail.tracing.values import JsonValue


def documents_output(documents: Iterable[RetrievedDocument]) -> tuple[JsonValue, bool]:
    """``{"documents": [...]}`` with each content cut to ``DOCUMENT_CAP_CHARS`` plus a
    marker, and whether any was cut."""
    rendered: list[JsonValue] = []
    cut = False
    for doc in documents:
        content = truncate_chars(doc.content, DOCUMENT_CAP_CHARS)
        cut = cut or content != doc.content
        rendered.append(
            {
                "content": content,
                "metadata": {
                    "score": doc.score,
                    "dataset_id": doc.dataset_id,
                    "dataset_name": doc.dataset_name,
                    "document_id": doc.document_id,
                    "document_name": doc.document_name,
                    "segment_id": doc.segment_id,
                    "position": doc.position,
                },
            }
        )
    return {"documents": rendered}, cut


def retrieval_verdict(error: str | None, warnings: tuple[str, ...]) -> Verdict:
    """ERROR with the error; WARNING with the warnings (a dataset skipped); else DEFAULT."""
    if error:
        return error_verdict(error)
    if warnings:
        return Verdict(Level.WARNING, "; ".join(warnings))
    return error_verdict(None)


def retrieval_observation(
    retrieval: DatasetRetrievalTraceInfo,
    *,
    trace_id: str,
    seed: str,
    parent_id: str,
    base_metadata: dict[str, JsonValue],
) -> Observation:
    """The ``dataset_retrieval`` retriever: the query in, the documents out.

    ``base_metadata`` carries the message-level keys the seed repeats (``from_*``,
    ``agent_based``...); the record's own ``ls_provider``, ``ls_model_name``, ``status`` and
    ``workflow_run_id`` override them.
    """
    output, cut = documents_output(retrieval.documents)
    metadata: dict[str, JsonValue] = {
        **base_metadata,
        "message_id": retrieval.message_id,
        "ls_provider": retrieval.ls_provider,
        "ls_model_name": retrieval.ls_model_name,
        "status": retrieval.status,
        "dataset_ids": list(retrieval.dataset_ids),
        "document_count": len(retrieval.documents),
    }
    if retrieval.workflow_run_id is not None:
        metadata["workflow_run_id"] = retrieval.workflow_run_id
    if retrieval.warnings:
        metadata["warnings"] = list(retrieval.warnings)
    if cut:
        metadata[TRUNCATION_METADATA_KEY] = True
    return observation(
        trace_id=trace_id,
        seed=seed,
        type_=ObservationType.RETRIEVER,
        name="dataset_retrieval",
        start=retrieval.start_time,
        end=retrieval.end_time,
        parent_id=parent_id,
        input_=retrieval.inputs,
        output=output,
        metadata=metadata,
        verdict=retrieval_verdict(retrieval.error, retrieval.warnings),
    )

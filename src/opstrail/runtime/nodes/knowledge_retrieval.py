"""knowledge-retrieval: searches local datasets through the ``Retriever`` port.

Dataset ids that do not resolve here (Dify exports encrypt them per workspace) retrieve
nothing; the warning is kept in the node's process data and so in the trace.
"""

from __future__ import annotations

from typing import Any

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.variables import to_text


def handle(ctx: NodeContext) -> NodeResult:
    """Retrieve chunks for the query; ``result`` is the list of chunks with metadata."""
    query = to_text(ctx.pool.get(ctx.data.get("query_variable_selector") or ["sys", "query"]))
    dataset_ids = [str(d) for d in ctx.data.get("dataset_ids") or []]
    if ctx.data.get("retrieval_mode") == "single":
        config = ctx.data.get("single_retrieval_config") or {}
        top_k, threshold = 1, None
    else:
        config = ctx.data.get("multiple_retrieval_config") or {}
        top_k = int(config.get("top_k") or 4)
        threshold = config.get("score_threshold")
    warnings: list[str] = []
    documents: list[Any] = []
    if ctx.env.retriever is None:
        warnings.append("no knowledge base is available here; nothing was retrieved")
    elif query.strip():
        documents, found_warnings = ctx.env.retriever.retrieve(
            query, dataset_ids, top_k=top_k,
            score_threshold=float(threshold) if threshold is not None else None)
        warnings.extend(found_warnings)
    result = [
        {
            "content": doc.content,
            "title": doc.document_name or "",
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
        for doc in documents
    ]
    process_data: dict[str, Any] = {"dataset_ids": dataset_ids, "top_k": top_k,
                                    "retrieval_mode": ctx.data.get("retrieval_mode") or "multiple"}
    if warnings:
        process_data["warnings"] = warnings
    if ctx.data.get("metadata_filtering_mode") not in (None, "disabled"):
        process_data["metadata_filtering"] = "ignored: metadata filters are not supported"
    return NodeResult(outputs={"result": result}, inputs={"query": query},
                      process_data=process_data, documents=tuple(documents))

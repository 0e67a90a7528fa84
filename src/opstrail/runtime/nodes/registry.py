"""Node type -> handler. One module per node type; this is the only place that lists them."""

from __future__ import annotations

from typing import Final

from opstrail.errors import DslError
from opstrail.runtime.nodes import (
    answer,
    assigner,
    code,
    containers,
    document_extractor,
    end,
    http_request,
    if_else,
    knowledge_retrieval,
    list_operator,
    llm,
    parameter_extractor,
    question_classifier,
    start,
    template_transform,
    tool,
    variable_aggregator,
)
from opstrail.runtime.nodes.base import NodeHandler

HANDLERS: Final[dict[str, NodeHandler]] = {
    "start": start.handle,
    "end": end.handle,
    "answer": answer.handle,
    "llm": llm.handle,
    "knowledge-retrieval": knowledge_retrieval.handle,
    "question-classifier": question_classifier.handle,
    "parameter-extractor": parameter_extractor.handle,
    "if-else": if_else.handle,
    "template-transform": template_transform.handle,
    "code": code.handle,
    "http-request": http_request.handle,
    "tool": tool.handle,
    "variable-aggregator": variable_aggregator.handle,
    "variable-assigner": variable_aggregator.handle,
    "assigner": assigner.handle,
    "iteration": containers.handle_iteration,
    "iteration-start": containers.handle_body_start,
    "loop": containers.handle_loop,
    "loop-start": containers.handle_body_start,
    "loop-end": containers.handle_loop_end,
    "list-operator": list_operator.handle,
    "document-extractor": document_extractor.handle,
}


def handler_for(node_type: str) -> NodeHandler:
    """The handler of ``node_type``.

    Raises:
        DslError: the type has no handler (parse_graph refuses such graphs first).
    """
    try:
        return HANDLERS[node_type]
    except KeyError:
        raise DslError(f"node type {node_type!r} is not supported") from None

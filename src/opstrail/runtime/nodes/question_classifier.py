"""question-classifier: the model picks a class; the class id is the edge handle."""

from __future__ import annotations

from typing import Any

from opstrail.runtime.models.base import ChatMessage
from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.model_calls import (
    ModelConfig,
    call_model,
    model_process_data,
    parse_json_object,
    usage_dict,
)
from opstrail.runtime.workflow.templates import render_references
from opstrail.runtime.workflow.variables import to_text


def handle(ctx: NodeContext) -> NodeResult:
    """Ask for ``{"category_id", "category_name"}`` (schema-constrained); an answer that
    names no known class falls back to the first class, as Dify does."""
    classes = [c for c in ctx.data.get("classes") or [] if c.get("id") is not None]
    if not classes:
        raise ctx.fail("the classifier has no classes")
    query = to_text(ctx.pool.get(ctx.data.get("query_variable_selector") or ["sys", "query"]))
    instruction = render_references(
        str(ctx.data.get("instruction") or ctx.data.get("instructions") or ""), ctx.pool)
    ids = [str(c["id"]) for c in classes]
    listing = "\n".join(f"- id {c['id']}: {c.get('name', '')}" for c in classes)
    system = (
        "You are a text classification engine. Pick exactly one category for the input text "
        "and answer with JSON {\"category_id\": ..., \"category_name\": ...}.\n"
        f"Categories:\n{listing}\n" + (f"Instructions: {instruction}\n" if instruction else "")
    )
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "category_id": {"type": "string", "enum": ids},
            "category_name": {"type": "string"},
        },
        "required": ["category_id", "category_name"],
    }
    messages = [ChatMessage(role="system", content=system),
                ChatMessage(role="user", content=query)]
    config = ModelConfig(ctx.data.get("model"))
    text, call = call_model(ctx.env.models, config, messages, response_schema=schema)
    answer = parse_json_object(text) or {}
    chosen = next((c for c in classes if str(c["id"]) == str(answer.get("category_id"))), None)
    fallback = chosen is None
    chosen = chosen or classes[0]
    outputs = {"class_name": str(chosen.get("name", "")), "class_id": str(chosen["id"]),
               "usage": usage_dict(call)}
    process_data = {
        **model_process_data(config, call),
        "prompts": [{"role": m.role, "text": m.content} for m in messages],
        "usage": usage_dict(call),
        "finish_reason": "stop",
        "fallback_to_first_class": fallback,
    }
    return NodeResult(outputs=outputs, inputs={"query": query}, process_data=process_data,
                      handle=str(chosen["id"]), model_calls=[call])

"""parameter-extractor: the model fills the declared parameters (JSON schema constrained)."""

from __future__ import annotations

from typing import Any, Final

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

_TYPES: Final[dict[str, dict[str, Any]]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "array[string]": {"type": "array", "items": {"type": "string"}},
    "array[number]": {"type": "array", "items": {"type": "number"}},
    "array[object]": {"type": "array", "items": {"type": "object"}},
    "array[bool]": {"type": "array", "items": {"type": "boolean"}},
    "object": {"type": "object"},
}
_EMPTY: Final = {"string": "", "number": 0, "bool": False, "boolean": False, "select": ""}


def parameter_schema(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema the answer must follow."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in parameters:
        name = str(param["name"])
        kind = str(param.get("type") or "string")
        if kind == "select":
            prop: dict[str, Any] = {"type": "string",
                                    "enum": [str(o) for o in param.get("options") or []]}
        else:
            prop = dict(_TYPES.get(kind, {"type": "string"}))
        if param.get("description"):
            prop["description"] = str(param["description"])
        properties[name] = prop
        if param.get("required"):
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def handle(ctx: NodeContext) -> NodeResult:
    """Extract; each parameter becomes an output, plus ``__is_success`` and ``__reason``."""
    parameters = [p for p in ctx.data.get("parameters") or [] if p.get("name")]
    if not parameters:
        raise ctx.fail("the parameter extractor declares no parameters")
    query = to_text(ctx.pool.get(ctx.data.get("query") or []))
    instruction = render_references(str(ctx.data.get("instruction") or ""), ctx.pool)
    schema = parameter_schema(parameters)
    system = (
        "Extract the parameters described by the JSON schema from the text and answer with "
        "one JSON object only.\n" + (f"Instructions: {instruction}\n" if instruction else "")
    )
    messages = [ChatMessage(role="system", content=system),
                ChatMessage(role="user", content=query)]
    config = ModelConfig(ctx.data.get("model"))
    text, call = call_model(ctx.env.models, config, messages, response_schema=schema)
    answer = parse_json_object(text)
    outputs: dict[str, Any] = {}
    missing: list[str] = []
    for param in parameters:
        name = str(param["name"])
        if answer is not None and name in answer:
            outputs[name] = answer[name]
        else:
            outputs[name] = [] if str(param.get("type", "")).startswith("array") else _EMPTY.get(
                str(param.get("type") or "string"))
            if param.get("required"):
                missing.append(name)
    if answer is None:
        reason = "the model did not answer with a JSON object"
    elif missing:
        reason = f"missing required parameters: {', '.join(missing)}"
    else:
        reason = None
    outputs["__is_success"] = 1 if reason is None else 0
    outputs["__reason"] = reason
    outputs["__usage"] = usage_dict(call)
    process_data = {
        **model_process_data(config, call),
        "prompts": [{"role": m.role, "text": m.content} for m in messages],
        "usage": usage_dict(call),
        "reasoning_mode": ctx.data.get("reasoning_mode") or "prompt",
        "schema": schema,
    }
    return NodeResult(outputs=outputs, inputs={"query": query}, process_data=process_data,
                      model_calls=[call])

"""llm: renders the prompt (basic or jinja2), adds memory and context, calls the model.

Vision is not supported: image inputs are ignored (``process_data.vision`` says so when the
node asks for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opstrail.runtime.models.base import ChatMessage
from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.nodes.template_transform import declared_variables
from opstrail.runtime.workflow.model_calls import (
    ModelConfig,
    call_model,
    model_process_data,
    parse_json_object,
    usage_dict,
)
from opstrail.runtime.workflow.templates import render_jinja, render_references
from opstrail.runtime.workflow.variables import MISSING, to_text

ROLES: Final = ("system", "user", "assistant")


def context_text(ctx: NodeContext) -> tuple[str | None, Any]:
    """The ``{{#context#}}`` text from the node's context selector (retrieval results are
    joined by their content)."""
    context = ctx.data.get("context") or {}
    if not context.get("enabled") or not context.get("variable_selector"):
        return None, None
    value = ctx.pool.lookup(context["variable_selector"])
    if value is MISSING or value is None:
        return "", None
    if isinstance(value, list):
        parts = [str(item.get("content", "")) if isinstance(item, Mapping) else to_text(item)
                 for item in value]
        return "\n".join(p for p in parts if p), value
    return to_text(value), value


def render_message(ctx: NodeContext, message: Mapping[str, Any], context: str | None) -> str:
    """One prompt message rendered: jinja2 over the node's variables, or basic references."""
    if message.get("edition_type") == "jinja2":
        return render_jinja(ctx.env.jinja, str(message.get("jinja2_text") or ""),
                            declared_variables(ctx), ctx.env.jinja_cache)
    special = {"context": context or ""}
    return render_references(str(message.get("text") or ""), ctx.pool, special=special)


def memory_messages(ctx: NodeContext) -> tuple[list[ChatMessage], ChatMessage | None]:
    """History turns of the conversation (window) and the query turn, for chatflows."""
    memory = ctx.data.get("memory")
    if not isinstance(memory, Mapping) or ctx.engine.graph.mode != "advanced-chat":
        return [], None
    history = list(ctx.env.history)
    window = memory.get("window") or {}
    if window.get("enabled"):
        size = int(window.get("size") or 0)
        history = history[-size:] if size > 0 else []
    messages: list[ChatMessage] = []
    for turn in history:
        messages.append(ChatMessage(role="user", content=turn.query))
        messages.append(ChatMessage(role="assistant", content=turn.answer))
    template = memory.get("query_prompt_template") or "{{#sys.query#}}"
    query = render_references(str(template), ctx.pool)
    return messages, ChatMessage(role="user", content=query) if query else None


def handle(ctx: NodeContext) -> NodeResult:
    """Render, call and record; outputs ``text`` (and ``structured_output``), ``usage``."""
    config = ModelConfig(ctx.data.get("model"))
    context, context_value = context_text(ctx)
    template = ctx.data.get("prompt_template") or []
    messages: list[ChatMessage] = []
    if isinstance(template, Mapping):  # completion-mode models take one text
        messages.append(ChatMessage(role="user", content=render_message(ctx, template, context)))
    else:
        for item in template:
            role = str(item.get("role") or "user")
            content = render_message(ctx, item, context)
            if role in ROLES and content.strip():
                messages.append(ChatMessage(role=role, content=content))  # type: ignore[arg-type]
    history, query_turn = memory_messages(ctx)
    if history or query_turn is not None:
        system = [m for m in messages if m.role == "system"]
        rest = [m for m in messages if m.role != "system"]
        messages = system + history + rest + ([query_turn] if query_turn else [])
    if not messages:
        raise ctx.fail("the prompt is empty after rendering")
    schema = None
    structured = ctx.data.get("structured_output") or {}
    if ctx.data.get("structured_output_enabled") and isinstance(structured.get("schema"),
                                                                 Mapping):
        schema = structured["schema"]
    sink = ctx.engine.delta_sink(ctx.node.id) if schema is None else None
    text, call = call_model(ctx.env.models, config, messages, response_schema=schema,
                            on_delta=sink)
    outputs: dict[str, Any] = {"text": text, "usage": usage_dict(call),
                               "finish_reason": "stop"}
    if schema is not None:
        outputs["structured_output"] = parse_json_object(text) or {}
    process_data: dict[str, Any] = {
        **model_process_data(config, call),
        "prompts": [{"role": m.role, "text": m.content} for m in messages],
        "usage": usage_dict(call),
        "finish_reason": "stop",
    }
    if (ctx.data.get("vision") or {}).get("enabled"):
        process_data["vision"] = "ignored: vision inputs are not supported"
    inputs: dict[str, Any] = {}
    if context is not None:
        inputs["#context#"] = context_value
    return NodeResult(outputs=outputs, inputs=inputs, process_data=process_data,
                      model_calls=[call])

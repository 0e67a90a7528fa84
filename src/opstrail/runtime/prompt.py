"""Prompts of chat, agent-chat and completion apps: form validation, ``{{variable}}``
rendering, context and history.

Form validation follows Dify's service API: a missing required field, a value outside a
select's options, or a value longer than ``max_length`` is refused with code
``invalid_param`` and a message naming the variable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opstrail.errors import ValidationError
from opstrail.runtime.dsl.model_config import AppSpec
from opstrail.runtime.models.base import ChatMessage

_VARIABLE_RE: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,79})\s*\}\}")
CONTEXT_PROMPT: Final = (
    "Use the following context as your learned knowledge, inside <context></context> XML tags.\n\n"
    "<context>\n{context}\n</context>\n\n"
    "When answer to user:\n"
    "- If you don't know, just say that you don't know.\n"
    "- If you don't know when you are not sure, ask for clarification.\n"
    "Avoid mentioning that you obtained the information from the context.\n"
    "And answer according to the language of the user's question.\n"
)
MAX_INPUT_CHARS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Exchange:
    """One past turn of a conversation."""

    query: str
    answer: str


def render(template: str, inputs: Mapping[str, Any]) -> str:
    """Replace ``{{name}}`` with ``inputs[name]``; unknown names stay as written (as Dify)."""

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in inputs and inputs[name] is not None:
            return str(inputs[name])
        return match.group(0)

    return _VARIABLE_RE.sub(_sub, template)


def validate_inputs(spec: AppSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``inputs`` against the form and fill defaults.

    Returns:
        The inputs of the form's variables (extra keys are dropped, as Dify does).

    Raises:
        ValidationError: code ``invalid_param``, naming the variable.
    """
    out: dict[str, Any] = {}
    for form_field in spec.user_input_form:
        name = form_field.variable
        value = inputs.get(name)
        if value is None or value == "":
            if form_field.default is not None:
                value = form_field.default
            elif form_field.required:
                raise ValidationError(f"{name} is required in input form", code="invalid_param")
            else:
                out[name] = "" if form_field.type != "number" else None
                continue
        if form_field.type == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValidationError(f"{name} in input form must be a number", code="invalid_param")
            if isinstance(value, str):
                try:
                    value = float(value) if "." in value else int(value)
                except ValueError as exc:
                    raise ValidationError(
                        f"{name} in input form must be a number", code="invalid_param"
                    ) from exc
            if isinstance(value, float) and not math.isfinite(value):
                # "1.0e999" parses to inf: no store or trace can keep it.
                raise ValidationError(
                    f"{name} in input form must be a finite number", code="invalid_param"
                )
        else:
            if not isinstance(value, str):
                raise ValidationError(f"{name} in input form must be a string", code="invalid_param")
            if form_field.type == "select" and form_field.options and value not in form_field.options:
                raise ValidationError(
                    f"{name} in input form must be one of the following: {list(form_field.options)}",
                    code="invalid_param",
                )
            limit = form_field.max_length or MAX_INPUT_CHARS
            if len(value) > limit:
                raise ValidationError(
                    f"{name} in input form must be less than {limit} characters",
                    code="invalid_param",
                )
        out[name] = value
    return out


def _history_messages(history: Sequence[Exchange], window: int) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for exchange in list(history)[-window:] if window > 0 else []:
        messages.append(ChatMessage(role="user", content=exchange.query))
        messages.append(ChatMessage(role="assistant", content=exchange.answer))
    return messages


def _histories_text(history: Sequence[Exchange], window: int) -> str:
    lines: list[str] = []
    for exchange in list(history)[-window:] if window > 0 else []:
        lines.append(f"Human: {exchange.query}")
        lines.append(f"Assistant: {exchange.answer}")
    return "\n".join(lines)


def build_messages(
    spec: AppSpec,
    *,
    inputs: Mapping[str, Any],
    query: str,
    history: Sequence[Exchange] = (),
    context: str = "",
) -> list[ChatMessage]:
    """The prompt of one run.

    Simple mode: the rendered ``pre_prompt`` (with the retrieval context) as system message,
    the history window, then the query. Completion apps send the rendered prompt as the user
    message (with the query appended when given). Advanced mode renders the configured
    messages, replacing ``{{#context#}}``, ``{{#histories#}}`` and ``{{#query#}}``.
    """
    if spec.prompt_type == "advanced":
        return _advanced_messages(spec, inputs=inputs, query=query, history=history, context=context)
    system = render(spec.pre_prompt, inputs)
    if context:
        system = CONTEXT_PROMPT.format(context=context) + ("\n" + system if system else "")
    if spec.mode == "completion":
        user = system if not query else (system + "\n\n" + query if system else query)
        return [ChatMessage(role="user", content=user or query)]
    messages: list[ChatMessage] = []
    if system.strip():
        messages.append(ChatMessage(role="system", content=system))
    messages.extend(_history_messages(history, spec.history_window))
    messages.append(ChatMessage(role="user", content=query))
    return messages


def _special(text: str, *, inputs: Mapping[str, Any], query: str, histories: str, context: str) -> str:
    text = text.replace("{{#context#}}", context).replace("{{#query#}}", query)
    text = text.replace("{{#histories#}}", histories)
    return render(text, inputs)


def _advanced_messages(
    spec: AppSpec,
    *,
    inputs: Mapping[str, Any],
    query: str,
    history: Sequence[Exchange],
    context: str,
) -> list[ChatMessage]:
    histories = _histories_text(history, spec.history_window)
    if spec.mode == "completion" or spec.model.mode == "completion":
        text = _special(spec.advanced_completion_prompt, inputs=inputs, query=query,
                        histories=histories, context=context)
        return [ChatMessage(role="user", content=text or query)]
    messages = [
        ChatMessage(role=m.role, content=_special(m.text, inputs=inputs, query=query,
                                                  histories=histories, context=context))
        for m in spec.advanced_chat_prompt
    ]
    if spec.mode != "completion":
        # Chat apps in advanced mode keep memory and the query after the configured messages.
        first_non_system = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
        messages[first_non_system:first_non_system] = _history_messages(history, spec.history_window)
        if query and not any("{{#query#}}" in m.text for m in spec.advanced_chat_prompt):
            messages.append(ChatMessage(role="user", content=query))
    return messages

"""The built-in offline model ``opstrail/offline``: deterministic, free, no network.

Answers are readable sentences chosen by a hash of the prompt, so the same prompt always gets
the same answer and different prompts get different ones. It counts tokens with
``runtime.models.tokens``, returns JSON valid for ``ModelRequest.response_schema``, and calls
tools deterministically: a tool whose name appears in the last user message, the calculator
for an arithmetic expression, ``current_time`` when the user mentions the time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from opstrail.runtime.models.base import (
    ChatMessage,
    ModelChunk,
    ModelRequest,
    ModelResult,
    ToolCall,
    ToolSpec,
)
from opstrail.runtime.models.pricing import priced_usage
from opstrail.runtime.models.tokens import count_message_tokens, count_tokens, tokenize

PROVIDER: Final = "opstrail"
MODEL: Final = "offline"

_SENTENCES: Final = (
    "The short answer is that it depends on the details you care about most.",
    "A good first step is to write down what you already know.",
    "Most people find it helps to compare two or three options side by side.",
    "Keep the goal small and concrete, then build from there.",
    "It is worth checking the numbers once more before deciding.",
    "In practice the simplest approach usually works best.",
    "Consider what would change if the situation were reversed.",
    "A useful rule of thumb is to start with the most common case.",
    "Try it on a small example first and see what happens.",
    "Experience shows that clear notes save time later.",
    "There is rarely a single right answer, but some are clearly better.",
    "Breaking the problem into parts makes each part easier.",
)
_QUESTION_TEMPLATES: Final = (
    "Can you tell me more about {topic}?",
    "What are the main risks with {topic}?",
    "How would you get started with {topic}?",
    "What is a common mistake with {topic}?",
    "Where can I learn more about {topic}?",
)
_ARITHMETIC_RE: Final = re.compile(
    r"[-(]*\d+(?:\.\d+)?(?:\s*(?:\*\*|[-+*/%^])\s*[-(]*\d+(?:\.\d+)?\)*)+\)*"
)
_TIME_RE: Final = re.compile(r"\b(time|clock|date|today)\b", re.IGNORECASE)
_CONTEXT_RE: Final = re.compile(r"<context>\s*(.*?)\s*</context>", re.DOTALL)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _last(messages: Sequence[ChatMessage], role: str) -> ChatMessage | None:
    for message in reversed(messages):
        if message.role == role:
            return message
    return None


def _topic(text: str, limit: int = 8) -> str:
    words = tokenize(text)
    words = [w for w in words if w.strip() and not re.fullmatch(r"[^\w]", w)]
    topic = " ".join(words[:limit])
    return topic or "this"


def find_arithmetic(text: str) -> str | None:
    """The first arithmetic expression in ``text`` (``12 * (3 + 4)``), or ``None``."""
    match = _ARITHMETIC_RE.search(text)
    if match is None:
        return None
    expression = match.group(0).strip()
    # The pattern may take a closing parenthesis that belongs to the prose; balance them.
    while expression.count(")") > expression.count("(") and expression.endswith(")"):
        expression = expression[:-1]
    expression += ")" * (expression.count("(") - expression.count(")"))
    return expression


class OfflineModel:
    """The offline model, implementing ``ModelClient``."""

    def invoke(self, request: ModelRequest) -> ModelResult:
        """Answer the request at once."""
        start = datetime.now(UTC)
        text, tool_calls, finish = self._answer(request)
        usage = self._usage(request, text, tool_calls)
        return ModelResult(
            text=text,
            usage=usage,
            start_time=start,
            end_time=datetime.now(UTC),
            tool_calls=tool_calls,
            finish_reason=finish,
        )

    def stream(self, request: ModelRequest) -> Iterator[ModelChunk]:
        """Yield the answer a few words at a time; the last chunk carries usage."""
        text, tool_calls, finish = self._answer(request)
        pieces = re.findall(r"\S+\s*", text) or [text]
        for index in range(0, len(pieces), 3):
            yield ModelChunk(delta="".join(pieces[index : index + 3]))
        yield ModelChunk(
            usage=self._usage(request, text, tool_calls),
            tool_calls=tool_calls,
            finish_reason=finish,
        )

    # -- internals -------------------------------------------------------------------------

    def _usage(self, request: ModelRequest, text: str, tool_calls: Sequence[ToolCall]) -> Any:
        prompt = count_message_tokens(m.content for m in request.messages)
        prompt += sum(count_tokens(t.name + " " + t.description) for t in request.tools)
        completion = count_tokens(text) + sum(
            count_tokens(c.name) + count_tokens(c.arguments) for c in tool_calls
        )
        return priced_usage(PROVIDER, MODEL, prompt, completion)

    def _answer(self, request: ModelRequest) -> tuple[str, tuple[ToolCall, ...], str]:
        messages = list(request.messages)
        prompt_text = "\n".join(f"{m.role}:{m.content}" for m in messages)
        seed = _seed(prompt_text)
        if request.response_schema is not None:
            user = _last(messages, "user")
            value = _schema_value(request.response_schema, user.content if user else "", seed)
            return json.dumps(value, ensure_ascii=False), (), "stop"
        if request.tools and messages and messages[-1].role == "user":
            calls = _tool_calls(request.tools, messages[-1].content, seed)
            if calls:
                return "", calls, "tool_calls"
        text = _prose(messages, seed)
        return _limit(text, request), (), "stop"


def _limit(text: str, request: ModelRequest) -> str:
    for stop in request.stop:
        if stop and stop in text:
            text = text[: text.index(stop)]
    max_tokens = request.parameters.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0 and count_tokens(text) > max_tokens:
        words = re.findall(r"\S+\s*", text)
        kept: list[str] = []
        for word in words:
            if count_tokens("".join([*kept, word])) > max_tokens:
                break
            kept.append(word)
        text = "".join(kept).rstrip()
    return text


def _prose(messages: Sequence[ChatMessage], seed: int) -> str:
    user = _last(messages, "user")
    question = user.content if user else ""
    parts: list[str] = []
    tool_results = [m for m in messages[messages.index(user) + 1 :] if m.role == "tool"] if user else []
    if tool_results:
        for result in tool_results:
            parts.append(f"The {result.name or 'tool'} tool returned: {result.content.strip()[:300]}.")
    else:
        parts.append(f"You asked about {_topic(question)}.")
    system = _last(messages, "system")
    if system is not None:
        # The instruction itself mentions "<context></context>": take the last filled block.
        contexts = [c.strip() for c in _CONTEXT_RE.findall(system.content) if c.strip()]
        if contexts:
            first = re.split(r"(?<=[.!?。])\s+", contexts[-1])[0]
            parts.append(f"According to the knowledge base: {first[:300]}")
    first_index = seed % len(_SENTENCES)
    second_index = (seed // len(_SENTENCES)) % len(_SENTENCES)
    if second_index == first_index:
        second_index = (first_index + 1) % len(_SENTENCES)
    parts.append(_SENTENCES[first_index])
    parts.append(_SENTENCES[second_index])
    return " ".join(parts)


def _tool_calls(tools: Sequence[ToolSpec], text: str, seed: int) -> tuple[ToolCall, ...]:
    lowered = text.lower()
    chosen: list[tuple[ToolSpec, dict[str, Any]]] = []
    for tool in tools:
        names = {tool.name.lower(), tool.name.lower().replace("_", " ")}
        if any(name and name in lowered for name in names):
            chosen.append((tool, _arguments(tool, text)))
    if not chosen:
        by_name = {t.name: t for t in tools}
        expression = find_arithmetic(text)
        if "calculator" in by_name and expression:
            chosen.append((by_name["calculator"], {"expression": expression}))
        elif "current_time" in by_name and _TIME_RE.search(text):
            chosen.append((by_name["current_time"], _arguments(by_name["current_time"], text)))
    return tuple(
        ToolCall(
            id=f"call_{(seed + index) % 10**12:012d}",
            name=tool.name,
            arguments=json.dumps(arguments, ensure_ascii=False),
        )
        for index, (tool, arguments) in enumerate(chosen)
    )


def _arguments(tool: ToolSpec, text: str) -> dict[str, Any]:
    properties = tool.parameters.get("properties") or {}
    arguments: dict[str, Any] = {}
    if not isinstance(properties, Mapping):
        return arguments
    required = set(tool.parameters.get("required") or ())
    for name, schema in properties.items():
        if not isinstance(schema, Mapping):
            continue
        if name == "expression":
            arguments[name] = find_arithmetic(text) or text
        elif schema.get("type") == "string" and (name in required or "enum" not in schema):
            enum = schema.get("enum")
            arguments[name] = enum[0] if enum else text.strip()[:200]
        elif name in required:
            arguments[name] = _schema_value(schema, text, _seed(name + text))
    return arguments


def _schema_value(schema: Mapping[str, Any], text: str, seed: int, depth: int = 0) -> Any:
    """A value valid for a (simple) JSON schema, derived from ``text`` and ``seed``."""
    if depth > 6:
        return None
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return _best_enum(enum, text, seed)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return _schema_value(options[0], text, seed, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: _schema_value(sub, text, _seed(f"{seed}:{name}"), depth + 1)
            for name, sub in properties.items()
            if isinstance(sub, Mapping)
        }
    if kind == "array":
        raw_items = schema.get("items")
        items: Mapping[str, Any] = raw_items if isinstance(raw_items, Mapping) else {}
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = max(low, min(3, high))
        if items.get("type", "string") == "string" and "enum" not in items:
            topic = _topic(text, 6)
            start = seed % len(_QUESTION_TEMPLATES)
            return [
                _QUESTION_TEMPLATES[(start + i) % len(_QUESTION_TEMPLATES)].format(topic=topic)
                for i in range(count)
            ]
        return [_schema_value(items, text, _seed(f"{seed}:{i}"), depth + 1) for i in range(count)]
    if kind in ("number", "integer"):
        number = re.search(r"-?\d+(?:\.\d+)?", text)
        value: float = float(number.group(0)) if number else float(seed % 100)
        if "minimum" in schema:
            value = max(value, float(schema["minimum"]))
        if "maximum" in schema:
            value = min(value, float(schema["maximum"]))
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return seed % 2 == 0
    if kind == "null":
        return None
    value_text = text.strip()[:200] or _SENTENCES[seed % len(_SENTENCES)]
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        value_text = value_text[:max_length]
    return value_text


def _best_enum(options: list[Any], text: str, seed: int) -> Any:
    words = {w.lower() for w in tokenize(text)}
    best, best_score = None, 0
    for option in options:
        option_words = {w.lower() for w in tokenize(str(option))}
        score = len(words & option_words)
        if score > best_score:
            best, best_score = option, score
    return best if best is not None else options[seed % len(options)]

"""The offline model: deterministic readable answers, token counts, schema-valid JSON and
deterministic tool calls."""

from __future__ import annotations

import json

from opstrail.runtime.models.base import ChatMessage, ModelRequest, ToolSpec
from opstrail.runtime.models.offline import OfflineModel, find_arithmetic
from opstrail.runtime.models.tokens import count_tokens
from opstrail.runtime.tools import builtin_tools


def _request(text: str, **kwargs: object) -> ModelRequest:
    return ModelRequest(provider="opstrail", model="offline",
                        messages=(ChatMessage(role="user", content=text),), **kwargs)  # type: ignore[arg-type]


def _tool_specs() -> tuple[ToolSpec, ...]:
    return tuple(ToolSpec(t.name, t.description, t.parameters) for t in builtin_tools().values())


def test_offline_answer_is_deterministic_and_prompt_dependent() -> None:
    """The same prompt always gets the same answer; another prompt another answer."""
    model = OfflineModel()
    first = model.invoke(_request("How do I bake bread?"))
    again = model.invoke(_request("How do I bake bread?"))
    other = model.invoke(_request("Which train goes to Lyon?"))
    assert first.text == again.text
    assert first.text != other.text
    assert "bake bread" in first.text
    assert first.usage.price == 0


def test_offline_usage_counts_prompt_and_answer_tokens() -> None:
    """Usage is the tokenizer's count of the prompt (plus framing) and of the answer."""
    result = OfflineModel().invoke(_request("one two three, four"))
    assert result.usage.prompt_tokens == count_tokens("one two three, four") + 3
    assert result.usage.completion_tokens == count_tokens(result.text)
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_offline_stream_concatenates_to_invoke_with_usage_last() -> None:
    """Streaming yields the same text in pieces and puts usage on the last chunk only."""
    model = OfflineModel()
    chunks = list(model.stream(_request("Tell me about rivers")))
    assert "".join(c.delta for c in chunks) == model.invoke(_request("Tell me about rivers")).text
    assert chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


def test_offline_honours_classifier_schema_with_enum() -> None:
    """A question-classifier schema gets a valid JSON object whose class best matches."""
    schema = {"type": "object", "properties": {
        "category_name": {"type": "string", "enum": ["billing question", "technical issue", "other"]}},
        "required": ["category_name"]}
    result = OfflineModel().invoke(_request("I have a technical issue with login", response_schema=schema))
    assert json.loads(result.text) == {"category_name": "technical issue"}


def test_offline_honours_extractor_schema_types() -> None:
    """A parameter-extractor schema gets every property with the declared type."""
    schema = {"type": "object", "properties": {
        "city": {"type": "string"}, "nights": {"type": "integer"}, "budget": {"type": "number"},
        "breakfast": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}}}
    value = json.loads(OfflineModel().invoke(_request("Book Paris for 3 nights", response_schema=schema)).text)
    assert isinstance(value["city"], str) and value["city"]
    assert value["nights"] == 3
    assert isinstance(value["budget"], float)
    assert isinstance(value["breakfast"], bool)
    assert len(value["tags"]) == 3 and all(isinstance(t, str) for t in value["tags"])


def test_offline_calls_calculator_for_arithmetic() -> None:
    """An arithmetic expression in the user message makes a calculator call with it."""
    result = OfflineModel().invoke(_request("what is (12 + 3) * 4?", tools=_tool_specs()))
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("calculator", {"expression": "(12 + 3) * 4"})
    ]
    assert result.finish_reason == "tool_calls"


def test_offline_calls_current_time_and_named_tools() -> None:
    """'time' picks current_time; a tool named in the message is called by name."""
    model = OfflineModel()
    timed = model.invoke(_request("what time is it?", tools=_tool_specs()))
    assert [c.name for c in timed.tool_calls] == ["current_time"]
    extra = ToolSpec("weather_lookup", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})
    named = model.invoke(_request("use weather_lookup for Oslo", tools=(*_tool_specs(), extra)))
    assert [c.name for c in named.tool_calls] == ["weather_lookup"]


def test_offline_answers_from_tool_results_without_calling_again() -> None:
    """After a tool answered, the model writes prose that quotes the result."""
    messages = (
        ChatMessage(role="user", content="what is 6*7?"),
        ChatMessage(role="tool", content="42", name="calculator", tool_call_id="c1"),
    )
    result = OfflineModel().invoke(ModelRequest(provider="opstrail", model="offline",
                                                messages=messages, tools=_tool_specs()))
    assert not result.tool_calls
    assert "The calculator tool returned: 42." in result.text


def test_find_arithmetic_balances_parentheses() -> None:
    """Expressions are cut out of prose with balanced parentheses."""
    assert find_arithmetic("compute 5*3) please") == "5*3"
    assert find_arithmetic("no numbers here") is None

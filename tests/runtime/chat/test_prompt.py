"""Form validation (Dify's invalid_param messages) and prompt building."""

from __future__ import annotations

import pytest

from opstrail.errors import ValidationError
from opstrail.runtime.dsl.model_config import AppSpec, FormField, ModelSpec
from opstrail.runtime.prompt import Exchange, build_messages, render, validate_inputs


def _spec(mode: str = "chat", **kwargs: object) -> AppSpec:
    form = (
        FormField("topic", "Topic", "text-input", required=True, max_length=10),
        FormField("lang", "Language", "select", required=False, default="English",
                  options=("English", "French")),
        FormField("count", "Count", "number"),
    )
    return AppSpec(mode=mode, model=ModelSpec("opstrail", "offline"), user_input_form=form,
                   pre_prompt="Write about {{topic}} in {{lang}}.", **kwargs)  # type: ignore[arg-type]


def test_validate_inputs_fills_defaults_and_drops_extra_keys() -> None:
    """Defaults fill absent fields; numbers are parsed; unknown keys are dropped."""
    assert validate_inputs(_spec(), {"topic": "tea", "count": "3", "junk": 1}) == {
        "topic": "tea", "lang": "English", "count": 3}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "topic is required in input form"),
        ({"topic": "x" * 11}, "topic in input form must be less than 10 characters"),
        ({"topic": "tea", "lang": "German"}, "lang in input form must be one of the following"),
        ({"topic": 5}, "topic in input form must be a string"),
        ({"topic": "tea", "count": "many"}, "count in input form must be a number"),
    ],
)
def test_validate_inputs_refuses_bad_values(inputs: dict[str, object], message: str) -> None:
    """Each refusal is invalid_param and names the variable."""
    with pytest.raises(ValidationError) as caught:
        validate_inputs(_spec(), inputs)
    assert caught.value.code == "invalid_param"
    assert message in caught.value.message


def test_render_keeps_unknown_variables() -> None:
    """Known variables are replaced; unknown ones stay as written."""
    assert render("{{ a }} and {{b}}", {"a": 1}) == "1 and {{b}}"


def test_build_messages_uses_history_window_and_context() -> None:
    """System prompt with context, the last N exchanges, then the query."""
    spec = _spec(history_window=1)
    messages = build_messages(spec, inputs={"topic": "tea", "lang": "French"}, query="Why?",
                              history=[Exchange("q1", "a1"), Exchange("q2", "a2")], context="Tea is old.")
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert "<context>\nTea is old.\n</context>" in messages[0].content
    assert messages[0].content.endswith("Write about tea in French.")
    assert [m.content for m in messages[1:]] == ["q2", "a2", "Why?"]


def test_build_messages_completion_sends_rendered_prompt_as_user() -> None:
    """A completion app sends its rendered prompt as the single user message."""
    messages = build_messages(_spec(mode="completion"), inputs={"topic": "tea", "lang": "English"},
                              query="")
    assert [(m.role, m.content) for m in messages] == [("user", "Write about tea in English.")]

"""Reading ``model_config``: the three samples, refusals naming the feature, and warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from opstrail.errors import DslError
from opstrail.runtime.dsl.model_config import parse_model_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dsl"


def _sample(name: str) -> tuple[dict[str, Any], str]:
    data = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    return data["model_config"], data["app"]["mode"]


def _minimal(**extra: Any) -> dict[str, Any]:
    return {"model": {"provider": "opstrail", "name": "offline", "mode": "chat"}, **extra}


def test_model_config_reads_chat_sample() -> None:
    """The chat sample gives its model, prompt, opening statement and preset questions."""
    spec, warnings = parse_model_config(*_sample("chat_food_calorie_planner.yml")[:1],
                                        mode="chat")
    assert spec.model.provider == "langgenius/azure_openai/azure_openai"
    assert spec.model.name == "gpt-41-mini"
    assert spec.pre_prompt.startswith("欢迎语")
    assert len(spec.suggested_questions) == 3
    assert spec.opening_statement
    assert not spec.moderation.enabled and not spec.datasets.dataset_ids
    assert warnings == []


def test_model_config_reads_agent_sample_with_unknown_tools_as_warnings() -> None:
    """The agent sample keeps its three Yahoo tools; each is a warning, not a refusal."""
    config, mode = _sample("agent_chat_investment_report_tools.yml")
    spec, warnings = parse_model_config(config, mode=mode)
    assert spec.agent.enabled and spec.agent.max_iteration == 5
    assert [t.tool_name for t in spec.agent.tools] == [
        "yahoo_finance_analytics", "yahoo_finance_news", "yahoo_finance_ticker"]
    assert len(warnings) == 3 and all("not available in opstrail" in w for w in warnings)
    assert spec.suggested_questions_after_answer


def test_model_config_reads_completion_form() -> None:
    """The completion sample's select and paragraph fields are read with their options."""
    config, mode = _sample("completion_sql_creator.yml")
    spec, _ = parse_model_config(config, mode=mode)
    assert [(f.variable, f.type, f.required) for f in spec.user_input_form] == [
        ("A", "select", True), ("default_input", "paragraph", True)]
    assert "PostgreSQL" in spec.user_input_form[0].options


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"external_data_tools": [{"enabled": True, "variable": "weather", "type": "api"}]},
         "external_data_tools"),
        ({"sensitive_word_avoidance": {"enabled": True, "type": "api", "config": {}}}, "'api'"),
        ({"user_input_form": [{"external_data_tool": {"variable": "w", "label": "W"}}]}, "'w'"),
    ],
)
def test_model_config_refuses_what_cannot_run_naming_it(extra: dict[str, Any], named: str) -> None:
    """External data tools and non-keyword moderation are refused with their name."""
    with pytest.raises(DslError) as caught:
        parse_model_config(_minimal(**extra), mode="chat")
    assert named in caught.value.message


def test_model_config_refuses_unknown_agent_strategy() -> None:
    """An agent strategy other than function_call/react is refused by name."""
    config = _minimal(agent_mode={"enabled": True, "strategy": "tree_of_thought", "tools": []})
    with pytest.raises(DslError, match="tree_of_thought"):
        parse_model_config(config, mode="agent-chat")


def test_model_config_warns_for_features_it_ignores() -> None:
    """Annotation replies, speech and react are accepted with one warning each."""
    config = _minimal(
        annotation_reply={"enabled": True},
        text_to_speech={"enabled": True},
        agent_mode={"enabled": True, "strategy": "react", "tools": [
            {"enabled": True, "tool_name": "calculator", "provider_id": "maths"}]},
    )
    spec, warnings = parse_model_config(config, mode="agent-chat")
    assert spec.agent.tools[0].tool_name == "calculator"
    assert len(warnings) == 3
    assert any("annotation_reply" in w for w in warnings)


def test_model_config_reads_keyword_moderation_and_datasets() -> None:
    """Keywords (one a line), presets and the doubly nested dataset ids are read."""
    config = _minimal(
        sensitive_word_avoidance={"enabled": True, "type": "keywords", "config": {
            "keywords": "bomb\nweapon", "inputs_config": {"enabled": True, "preset_response": "No."},
            "outputs_config": {"enabled": False}}},
        dataset_configs={"datasets": {"datasets": [{"dataset": {"enabled": True, "id": "d-1"}}]},
                         "retrieval_model": "multiple", "top_k": 2},
    )
    spec, _ = parse_model_config(config, mode="chat")
    assert spec.moderation.keywords == ("bomb", "weapon")
    assert spec.moderation.inputs_preset_response == "No."
    assert spec.datasets.dataset_ids == ("d-1",) and spec.datasets.top_k == 2

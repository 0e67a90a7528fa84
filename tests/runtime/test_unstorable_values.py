"""Values no store or trace can keep (NUL characters, NaN and Infinity, over-long names) are
refused where they enter the runtime: the DSL, form inputs, assigner arithmetic, code node
results."""

from __future__ import annotations

import math
from typing import Any

import pytest

from opstrail.errors import DslError, RuntimeFailure, ValidationError
from opstrail.runtime.dsl.model_config import AppSpec, FormField, ModelSpec
from opstrail.runtime.dsl.parse import MAX_NAME_CHARS, check_name, parse_document
from opstrail.runtime.nodes.assigner import apply_operation
from opstrail.runtime.prompt import validate_inputs

DOCUMENT = "app: {name: N, mode: chat}\nkind: app\nversion: 0.6.0\nmodel_config: {model: {provider: p, name: m}, x: X}\n"


@pytest.mark.parametrize(
    ("value", "where"),
    [('"a\\0b"', "model_config.x"), (".nan", "model_config.x"), ("-.inf", "model_config.x"),
     ('["ok", "\\0"]', "model_config.x[1]"), ('{"k\\0": 1}', "model_config.x.'k\\x00'")],
)
def test_parse_document_refuses_nul_and_non_finite_values_naming_the_place(
    value: str, where: str
) -> None:
    """A NUL character (key or value) or a non-finite number anywhere is a DslError naming
    the place."""
    with pytest.raises(DslError) as caught:
        parse_document(DOCUMENT.replace("X", value))
    assert caught.value.message.startswith(where)


def test_parse_document_walks_an_alias_bomb_once() -> None:
    """Shared YAML aliases are checked once, so a billion-laughs document parses quickly (and
    is refused for what it lacks, not hung on)."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 12):
        levels.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    document = DOCUMENT.replace("X", "ok") + "\n".join(levels) + "\n"
    assert parse_document(document).app.name == "N"


def test_check_name_allows_the_column_width_and_refuses_one_more() -> None:
    """Names and ids fit their 255-character columns or are refused, naming the field."""
    assert check_name("n" * MAX_NAME_CHARS, "app.name") == "n" * MAX_NAME_CHARS
    with pytest.raises(DslError, match=r"app\.name is 256 characters long"):
        check_name("n" * (MAX_NAME_CHARS + 1), "app.name")


@pytest.mark.parametrize("raw", ["1.0e999", "-2.5e400", "1.5E+309"])
def test_chat_number_input_refuses_text_that_parses_to_infinity(raw: str) -> None:
    """A number input given as text that overflows to inf is invalid_param, not stored."""
    spec = AppSpec(mode="chat", model=ModelSpec("opstrail", "offline"),
                   user_input_form=(FormField("count", "Count", "number"),))
    with pytest.raises(ValidationError, match="count in input form must be a finite number"):
        validate_inputs(spec, {"count": raw})
    assert validate_inputs(spec, {"count": "2.5"}) == {"count": 2.5}


@pytest.mark.parametrize(
    ("operation", "current", "value"),
    [("*=", 1e308, 10), ("+=", 1e308, 1e308), ("/=", 1e308, 1e-308), ("*=", 10**400, 0.5)],
)
def test_assigner_arithmetic_refuses_results_that_are_not_finite(
    operation: str, current: Any, value: Any
) -> None:
    """Overflowing arithmetic fails the node with invalid_operation instead of writing inf."""
    with pytest.raises(RuntimeFailure) as caught:
        apply_operation(operation, current, value)
    assert caught.value.code == "invalid_operation"
    assert math.isfinite(apply_operation(operation, 2.0, 4.0))

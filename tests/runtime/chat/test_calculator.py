"""The calculator tool: safe arithmetic without eval, with clear errors."""

from __future__ import annotations

import pytest

from opstrail.errors import RuntimeFailure
from opstrail.runtime.tools import ToolRunner, builtin_tools
from opstrail.runtime.tools.calculator import evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("1 + 2 * 3", 7.0), ("(1 + 2) * 3", 9.0), ("2 ^ 10", 1024.0), ("-(2 + 3) * -2", 10.0),
     ("7 % 3", 1.0), ("10 / 4", 2.5), ("2 ** 3 ** 2", 512.0)],
)
def test_calculator_evaluates_arithmetic(expression: str, expected: float) -> None:
    """Precedence, parentheses, unary minus and right-associative powers are honoured."""
    assert evaluate(expression) == expected


@pytest.mark.parametrize(
    "expression",
    ["__import__('os')", "1 +", "(1 + 2", "1 / 0", "9 ^ 9 ^ 9", "", "abs(1)"],
)
def test_calculator_refuses_what_is_not_arithmetic(expression: str) -> None:
    """Names, calls, unbalanced input, division by zero and huge powers fail with tool_error."""
    with pytest.raises(RuntimeFailure) as caught:
        evaluate(expression)
    assert caught.value.code == "tool_error"


def test_tool_runner_reports_unknown_tool_with_reason() -> None:
    """An unavailable tool fails with tool_not_found and the configured reason."""
    runner = ToolRunner(builtin_tools(), {"stock_news": "provider yahoo is not installed"})
    assert runner.run("calculator", {"expression": "6*7"}) == "42"
    with pytest.raises(RuntimeFailure) as caught:
        runner.run("stock_news", {})
    assert caught.value.code == "tool_not_found"
    assert "provider yahoo is not installed" in caught.value.message

"""Dify's comparison operators (if-else, loop break conditions, list filters).

Semantics follow ``api/core/workflow/utils/condition/processor.py``: a missing value fails
every positive test (``contains``, ``=``...) and passes the negative ones (``not contains``,
``empty``, ``null``, ``not exists``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from opstrail.errors import RuntimeFailure
from opstrail.runtime.workflow.variables import MISSING

OPERATORS: Final = frozenset(
    {
        "contains", "not contains", "start with", "end with", "is", "is not", "empty",
        "not empty", "in", "not in", "all of", "=", "≠", ">", "<", "≥", "≤", "null",
        "not null", "exists", "not exists",
    }
)
_ALIASES: Final = {"!=": "≠", ">=": "≥", "<=": "≤", "==": "=", "eq": "=", "ne": "≠"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _as_list(expected: Any) -> list[Any]:
    if isinstance(expected, list):
        return expected
    if isinstance(expected, str):
        return [part.strip() for part in expected.split(",") if part.strip()] if expected else []
    return [expected]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        number = _number(expected)
        return number is not None and float(actual) == number
    return str(actual) == str(expected) if actual is not None else expected in (None, "")


def compare(operator: str, actual: Any, expected: Any) -> bool:
    """Whether ``actual <operator> expected`` holds.

    Raises:
        RuntimeFailure: the operator is unknown.
    """
    op = _ALIASES.get(operator, operator)
    absent = actual is MISSING or actual is None
    if op == "exists":
        return not absent
    if op == "not exists":
        return absent
    if op in ("null", "empty"):
        if absent:
            return True
        if op == "empty":
            return isinstance(actual, str | list | dict | tuple) and len(actual) == 0
        return False
    if op in ("not null", "not empty"):
        if absent:
            return False
        if op == "not empty":
            return not (isinstance(actual, str | list | dict | tuple) and len(actual) == 0)
        return True
    if op == "contains":
        if absent:
            return False
        if isinstance(actual, str):
            return str(expected) in actual
        if isinstance(actual, list | tuple):
            return any(_same(item, expected) for item in actual)
        return False
    if op == "not contains":
        return not compare("contains", actual, expected)
    if op == "start with":
        return isinstance(actual, str) and actual.startswith(str(expected))
    if op == "end with":
        return isinstance(actual, str) and actual.endswith(str(expected))
    if op == "is":
        return not absent and _same(actual, expected)
    if op == "is not":
        return absent or not _same(actual, expected)
    if op == "in":
        return not absent and any(_same(actual, item) for item in _as_list(expected))
    if op == "not in":
        return absent or not any(_same(actual, item) for item in _as_list(expected))
    if op == "all of":
        if absent or not isinstance(actual, list | tuple):
            return False
        return all(any(_same(item, wanted) for item in actual) for wanted in _as_list(expected))
    if op in ("=", "≠", ">", "<", "≥", "≤"):
        left, right = _number(None if absent else actual), _number(expected)
        if left is None or right is None:
            return op == "≠" and not (left is None and right is None)
        return {
            "=": left == right, "≠": left != right, ">": left > right,
            "<": left < right, "≥": left >= right, "≤": left <= right,
        }[op]
    raise RuntimeFailure(f"unknown comparison operator {operator!r}", code="invalid_condition")


def evaluate_conditions(
    conditions: Sequence[Mapping[str, Any]],
    logical_operator: str,
    resolve: Any,
) -> tuple[bool, list[dict[str, Any]]]:
    """Evaluate a list of conditions joined by ``and``/``or``.

    ``resolve(condition) -> (actual, expected)`` reads the compared values. Returns the
    result and, per condition, what was compared (for the node's process data).
    """
    details: list[dict[str, Any]] = []
    results: list[bool] = []
    for condition in conditions:
        actual, expected = resolve(condition)
        operator = str(condition.get("comparison_operator") or "")
        result = compare(operator, actual, expected)
        details.append({
            "operator": operator,
            "actual": None if actual is MISSING else actual,
            "expected": expected,
            "result": result,
        })
        results.append(result)
        # Short-circuit as Dify does, but keep the details of what was checked.
        if logical_operator == "or" and result:
            break
        if logical_operator != "or" and not result:
            break
    if not results:
        return True, details
    return (any(results) if logical_operator == "or" else all(results)), details

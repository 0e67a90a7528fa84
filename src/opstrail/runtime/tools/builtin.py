"""Built-in tools: ``current_time`` and ``calculator``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opstrail.errors import RuntimeFailure
from opstrail.runtime.tools.calculator import evaluate, format_number


class Tool(Protocol):
    """A tool an agent may call."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any]: ...

    def invoke(self, arguments: Mapping[str, Any]) -> str:
        """Run the tool; raise ``RuntimeFailure`` with a reason on failure."""
        ...


@dataclass(frozen=True, slots=True)
class CurrentTimeTool:
    """The current date and time in a time zone (IANA name, default UTC)."""

    name: str = "current_time"
    description: str = "Get the current date and time, optionally in an IANA time zone."
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {
            "type": "object",
            "properties": {
                "timezone": {"type": "string", "description": "IANA time zone, e.g. Europe/Paris"}
            },
        }
    )

    def invoke(self, arguments: Mapping[str, Any]) -> str:
        zone_name = str(arguments.get("timezone") or "UTC")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise RuntimeFailure(f"current_time: unknown time zone {zone_name!r}", code="tool_error") from exc
        return datetime.now(UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True, slots=True)
class CalculatorTool:
    """Evaluates arithmetic (+ - * / % ^ and parentheses) without ``eval``."""

    name: str = "calculator"
    description: str = "Evaluate an arithmetic expression such as (12 + 3) * 4 / 2."
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "the expression"}},
            "required": ["expression"],
        }
    )

    def invoke(self, arguments: Mapping[str, Any]) -> str:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise RuntimeFailure("calculator: 'expression' must be a string", code="tool_error")
        return format_number(evaluate(expression))


def builtin_tools() -> dict[str, Tool]:
    """A fresh registry of the built-in tools, by name."""
    tools: list[Tool] = [CurrentTimeTool(), CalculatorTool()]
    return {tool.name: tool for tool in tools}

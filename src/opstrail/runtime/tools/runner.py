"""Runs tool calls by name; a missing tool or bad arguments are ``RuntimeFailure``s."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opstrail.errors import RuntimeFailure
from opstrail.runtime.tools.builtin import Tool


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Tool-call arguments (JSON text) as a dict; ``{}`` when empty.

    Raises:
        RuntimeFailure: the text is not JSON.
    """
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise RuntimeFailure(f"tool arguments are not valid JSON: {exc}", code="tool_error") from exc
    return value if isinstance(value, dict) else {"value": value}


class ToolRunner:
    """Runs the tools of one app.

    Args:
        tools: available tools by name.
        unavailable: names the app declares but opstrail cannot run, with the reason; calling
            one fails with that reason (decisions.md: a missing tool fails at run time).
    """

    def __init__(self, tools: Mapping[str, Tool], unavailable: Mapping[str, str] | None = None) -> None:
        self._tools = dict(tools)
        self._unavailable = dict(unavailable or {})

    @property
    def tools(self) -> Mapping[str, Tool]:
        return self._tools

    def run(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Run tool ``name``.

        Raises:
            RuntimeFailure: ``tool_not_found`` for an unknown or unavailable tool,
                ``tool_error`` when the tool fails.
        """
        tool = self._tools.get(name)
        if tool is None:
            reason = self._unavailable.get(name, "it is not configured for this app")
            raise RuntimeFailure(f"tool {name!r} is not available: {reason}", code="tool_not_found")
        return tool.invoke(arguments)

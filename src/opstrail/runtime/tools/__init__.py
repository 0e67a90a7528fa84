"""Tools agents can call: the built-ins and the runner."""

from opstrail.runtime.tools.builtin import Tool, builtin_tools
from opstrail.runtime.tools.runner import ToolRunner, parse_arguments

__all__ = ["Tool", "ToolRunner", "builtin_tools", "parse_arguments"]

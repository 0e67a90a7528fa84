"""Runners of chat, agent-chat and completion apps, by mode."""

from __future__ import annotations

from collections.abc import Iterator

from opstrail.runtime.apps.agent_chat import run_agent_chat
from opstrail.runtime.apps.chat import run_chat
from opstrail.runtime.apps.common import RunDeps, RunEvent, RunRequest
from opstrail.runtime.apps.completion import run_completion


def run_message(request: RunRequest, deps: RunDeps) -> Iterator[RunEvent]:
    """Run one message of a chat, agent-chat or completion app."""
    mode = request.spec.mode
    if mode == "agent-chat":
        return run_agent_chat(request, deps)
    if mode == "completion":
        return run_completion(request, deps)
    return run_chat(request, deps)


__all__ = ["RunDeps", "RunEvent", "RunRequest", "run_message"]

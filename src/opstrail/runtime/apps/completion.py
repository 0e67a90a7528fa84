"""Completion (text generator) apps: one shot from the form, same pipeline as chat.

The prompt is the rendered ``pre_prompt`` as a user message (see ``runtime.prompt``), the
retrieval query is the ``dataset_query_variable`` field, and there is no conversation
history or suggested questions (the spec disables them for this mode).
"""

from __future__ import annotations

from collections.abc import Iterator

from opstrail.runtime.apps.chat import run_chat
from opstrail.runtime.apps.common import RunDeps, RunEvent, RunRequest


def run_completion(request: RunRequest, deps: RunDeps) -> Iterator[RunEvent]:
    """Run one completion message; yields events, ends with ``RunCompleted``."""
    return run_chat(request, deps)

"""Reading SSE answers and trace trees in tests."""

from __future__ import annotations

import json
from typing import Any


def sse_events(text: str) -> list[dict[str, Any]]:
    """The ``data:`` events of an SSE body (pings skipped)."""
    events = []
    for frame in text.split("\n\n"):
        for line in frame.splitlines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
    return events


def tree(trace: dict[str, Any]) -> list[tuple[str | None, str, str, str]]:
    """A trace's observations as ``(parent name, type, name, level)`` in arrival order."""
    by_id = {o["id"]: o for o in trace["observations"]}
    out = []
    for o in trace["observations"]:
        parent = by_id.get(o["parentObservationId"]) if o["parentObservationId"] else None
        out.append((parent["name"] if parent else None, o["type"], o["name"], o["level"]))
    return out


def named(trace: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The observations of a trace with this name."""
    return [o for o in trace["observations"] if o["name"] == name]

"""Draw a trace (as Langfuse's public API returns it) as a tree in the terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.tree import Tree

_LEVEL_STYLE = {"ERROR": "red", "WARNING": "yellow", "DEBUG": "dim"}


def _duration_ms(observation: dict[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(str(observation["startTime"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(observation["endTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return ""
    return f"{(end - start).total_seconds() * 1000:.0f} ms"


def _label(observation: dict[str, Any]) -> str:
    kind = str(observation.get("type", "span")).lower()
    level = str(observation.get("level") or "DEFAULT").upper()
    style = _LEVEL_STYLE.get(level, "")
    parts = [f"[bold]{kind}[/]", observation.get("name") or "?"]
    duration = _duration_ms(observation)
    if duration:
        parts.append(f"[dim]{duration}[/]")
    usage = observation.get("usageDetails") or {}
    if usage.get("total"):
        parts.append(f"[cyan]{usage.get('input', 0)}→{usage.get('output', 0)} tok[/]")
    if observation.get("model"):
        parts.append(f"[magenta]{observation['model']}[/]")
    if level != "DEFAULT":
        parts.append(f"[{style}]{level}[/]")
        if observation.get("statusMessage"):
            parts.append(f"[{style}]{str(observation['statusMessage'])[:80]}[/]")
    return " ".join(str(p) for p in parts)


def trace_tree(trace: dict[str, Any]) -> Tree:
    """A rich Tree of the trace: one node per observation under its parent."""
    tags = ",".join(trace.get("tags") or [])
    head = f"[bold green]{trace.get('name')}[/] [dim]{trace.get('id')}[/]"
    if trace.get("userId"):
        head += f" user={trace['userId']}"
    if trace.get("sessionId"):
        head += f" session={str(trace['sessionId'])[:8]}…"
    if tags:
        head += f" [blue]{tags}[/]"
    tree = Tree(head)
    observations: list[dict[str, Any]] = sorted(
        trace.get("observations") or [], key=lambda o: str(o.get("startTime", ""))
    )
    known = {o["id"] for o in observations}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for observation in observations:
        parent = observation.get("parentObservationId")
        children.setdefault(parent if parent in known else None, []).append(observation)

    def add(node: Tree, parent_id: str | None) -> None:
        for child in children.get(parent_id, []):
            add(node.add(_label(child)), child["id"])

    add(tree, None)
    return tree

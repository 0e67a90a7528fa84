"""Terminal views of what the collector received: a traces table and an observation tree."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

_LEVEL_STYLES: Final = {"ERROR": "bold red", "WARNING": "yellow", "DEBUG": "dim"}
# Langfuse shows model, usage and cost on every type except span and event.
_PLAIN_TYPES: Final = frozenset({"SPAN", "EVENT"})


def traces_table(traces: list[dict[str, Any]], *, title: str = "Received traces") -> Table:
    """A table row per trace: id, name, observations, start, user, session, tags."""
    table = Table(title=title, show_lines=False)
    for column in ("trace id", "name", "obs", "start", "user", "session", "tags"):
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column in ("trace id", "start"),
            justify="right" if column == "obs" else "left",
        )
    for trace in traces:
        name = trace.get("name") or ""
        if trace.get("shallow"):
            name = f"{name} (no root span)".strip()
        table.add_row(
            trace["id"],
            name,
            str(len(trace.get("observations") or [])),
            trace.get("timestamp") or "",
            trace.get("userId") or "",
            trace.get("sessionId") or "",
            ", ".join(trace.get("tags") or []),
        )
    return table


def trace_tree(trace: dict[str, Any]) -> Tree:
    """The trace's observations as a tree (type, name, level, duration, tokens and cost)."""
    header = Text.assemble(
        ("trace ", "dim"), (trace["id"], "bold"), "  ", (trace.get("name") or "", "cyan")
    )
    details = [f"{k}={trace[k]}" for k in ("userId", "sessionId", "environment") if trace.get(k)]
    if trace.get("tags"):
        details.append("tags=" + ",".join(trace["tags"]))
    if details:
        header.append("  " + "  ".join(details), style="dim")
    tree = Tree(header)
    observations: list[dict[str, Any]] = sorted(
        trace.get("observations") or [], key=lambda o: o.get("startTime") or ""
    )
    ids = {o["id"] for o in observations}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for obs in observations:
        parent = obs.get("parentObservationId")
        children.setdefault(parent if parent in ids else None, []).append(obs)

    def add(branch: Tree, parent_id: str | None) -> None:
        for obs in children.get(parent_id, []):
            label = observation_label(obs)
            parent = obs.get("parentObservationId")
            if parent_id is None and parent:
                label.append(f"  (parent {parent} missing)", style="red")
            add(branch.add(label), obs["id"])

    add(tree, None)
    return tree


def observation_label(obs: dict[str, Any]) -> Text:
    """One line for an observation."""
    obs_type = str(obs.get("type") or "SPAN")
    level = str(obs.get("level") or "DEFAULT")
    label = Text.assemble((f"[{obs_type.lower()}] ", "magenta"), (obs.get("name") or "", "bold"))
    if level != "DEFAULT":
        label.append(f"  {level}", style=_LEVEL_STYLES.get(level, ""))
    duration = _duration_ms(obs.get("startTime"), obs.get("endTime"))
    if duration is not None:
        label.append(f"  {duration:.0f} ms", style="dim")
    if obs_type not in _PLAIN_TYPES:
        if obs.get("model"):
            label.append(f"  {obs['model']}", style="green")
        usage = obs.get("usageDetails") or {}
        if usage:
            parts = [f"{k}={v}" for k, v in usage.items()]
            label.append("  tokens " + " ".join(parts), style="blue")
        cost = obs.get("costDetails") or {}
        if "total" in cost:
            label.append(f"  ${cost['total']:.6f}", style="green")
    if obs.get("statusMessage") and level in ("ERROR", "WARNING"):
        label.append(f"  {str(obs['statusMessage'])[:120]}", style=_LEVEL_STYLES[level])
    if (obs.get("copies") or 1) > 1:
        same = "identical" if obs.get("identicalCopies") else "differing"
        label.append(f"  x{obs['copies']} copies ({same})", style="bold red")
    return label


def _duration_ms(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return (finish - begin).total_seconds() * 1000

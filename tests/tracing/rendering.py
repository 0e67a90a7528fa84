"""Canonical JSON rendering of trace trees, and the golden-file check.

Goldens live in ``tests/tracing/golden/<name>.json``. Run with ``OPSTRAIL_UPDATE_GOLDEN=1`` to
rewrite them, then read the diff: a golden must be right, not merely current.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from opstrail.tracing.tree import Observation, Score, Trace, Usage

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE_ENV = "OPSTRAIL_UPDATE_GOLDEN"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def outline(trace: Trace) -> list[str]:
    """One line per observation, indented by depth: ``type name [LEVEL] usage cost``."""
    depth: dict[str, int] = {}
    lines: list[str] = []
    for obs in trace.observations:
        d = depth[obs.parent_id] + 1 if obs.parent_id in depth else 0
        if obs.parent_id is not None and obs.parent_id not in depth:
            d = 1  # parent exported earlier (external_parent_ids)
        depth[obs.id] = d
        extra = ""
        if obs.usage is not None:
            extra += f" usage={obs.usage.total}"
        if obs.cost is not None:
            extra += f" cost={obs.cost.total}"
        lines.append(f"{'  ' * d}{obs.type.value} {obs.name} [{obs.level.value}]{extra}")
    return lines


def render_observation(obs: Observation) -> dict[str, Any]:
    """Every field of an observation, JSON-ready."""
    return {
        "id": obs.id,
        "parent_id": obs.parent_id,
        "type": obs.type.value,
        "name": obs.name,
        "start_time": _time(obs.start_time),
        "end_time": _time(obs.end_time),
        "level": obs.level.value,
        "status_message": obs.status_message,
        "model": obs.model,
        "model_parameters": dict(obs.model_parameters)
        if obs.model_parameters is not None
        else None,
        "usage": None
        if obs.usage is None
        else {
            "input": obs.usage.input,
            "output": obs.usage.output,
            "total": obs.usage.total,
            "details": dict(obs.usage.details),
        },
        "cost": None
        if obs.cost is None
        else {"input": obs.cost.input, "output": obs.cost.output, "total": obs.cost.total},
        "completion_start_time": _time(obs.completion_start_time),
        "version": obs.version,
        "input": obs.input,
        "output": obs.output,
        "metadata": dict(obs.metadata),
    }


def render_trace(trace: Trace) -> dict[str, Any]:
    """Every field of a trace and its observations, plus an outline for reading."""
    return {
        "outline": outline(trace),
        "id": trace.id,
        "name": trace.name,
        "timestamp": _time(trace.timestamp),
        "user_id": trace.user_id,
        "session_id": trace.session_id,
        "tags": list(trace.tags),
        "environment": trace.environment,
        "release": trace.release,
        "version": trace.version,
        "external_parent_ids": sorted(trace.external_parent_ids),
        "input": trace.input,
        "output": trace.output,
        "metadata": dict(trace.metadata),
        "observations": [render_observation(o) for o in trace.observations],
    }


def render_score(score: Score | None) -> dict[str, Any] | None:
    """Every field of a score (``None`` for a revoked rating)."""
    if score is None:
        return None
    return {
        "id": score.id,
        "trace_id": score.trace_id,
        "name": score.name,
        "value": score.value,
        "data_type": score.data_type,
        "timestamp": _time(score.timestamp),
        "comment": score.comment,
        "observation_id": score.observation_id,
        "environment": score.environment,
        "metadata": dict(score.metadata),
    }


def check_golden(name: str, rendered: Any) -> None:
    """Compare ``rendered`` with the golden file ``name``; rewrite it under
    ``OPSTRAIL_UPDATE_GOLDEN=1``."""
    path = GOLDEN_DIR / f"{name}.json"
    text = json.dumps(rendered, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if os.environ.get(UPDATE_ENV) == "1":
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing golden {path.name}; run with {UPDATE_ENV}=1 and review it"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads(text) == expected, f"trace differs from golden {path.name}"


def dig(value: object, *path: str | int) -> Any:
    """``value[path[0]][path[1]]...`` on a JSON value (for tests reading outputs)."""
    current: Any = value
    for key in path:
        current = current[key]
    return current


def usage_of(obs: Observation) -> Usage:
    """The observation's usage, which the test expects to exist."""
    assert obs.usage is not None, f"{obs.name} has no usage"
    return obs.usage

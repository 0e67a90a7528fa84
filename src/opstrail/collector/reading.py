"""Read what the collector received, merged the way Langfuse shows it.

Observation copies with the same id merge in arrival order (later non-null values win,
metadata merges), and each merged observation says how many copies arrived (``copies``) and
whether re-sent copies were identical (``identicalCopies``). A trace merges its record copies
(root span first-class, tags unioned) and falls back to a "shallow" trace (id and timestamp)
when no record arrived, as Langfuse does for spans without a root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from opstrail.collector.store import CollectorStore, ObservationCopy, TraceCopy


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An observation that arrived more than once."""

    project_id: str
    id: str
    trace_id: str | None
    copies: int
    identical: bool


# Langfuse keeps these from the first write of an entity (v3 worker, IngestionService).
OBSERVATION_IMMUTABLE: Final = frozenset({"id", "traceId", "startTime", "environment"})
TRACE_IMMUTABLE: Final = frozenset({"id", "timestamp"})


def merge_observations(copies: Iterable[ObservationCopy]) -> list[dict[str, Any]]:
    """One merged observation per (project, id), in order of first arrival.

    Later non-null values win, except the fields Langfuse freezes at the first write
    (trace id, start time, environment): an update that arrives before its create fixes them,
    with the envelope time as start time, exactly as Langfuse's worker does.
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    prints: dict[tuple[str, str], list[str]] = {}
    for copy in copies:
        key = (copy.project_id, copy.id)
        current = merged.get(key)
        if current is None:
            current = {"projectId": copy.project_id, **copy.data}
            if current.get("startTime") is None:
                current["startTime"] = current.get("eventTimestamp")
            merged[key] = current
            prints[key] = []
        else:
            _merge_into(current, copy.data, OBSERVATION_IMMUTABLE)
        if copy.is_copy:
            prints[key].append(copy.fingerprint)
        current["copies"] = len(prints[key])
        current["identicalCopies"] = len(set(prints[key])) <= 1
        current.setdefault("traceId", copy.trace_id)
    return list(merged.values())


def _merge_into(
    target: dict[str, Any], update: dict[str, Any], immutable: frozenset[str] = frozenset()
) -> None:
    for key, value in update.items():
        if value is None or (key in immutable and target.get(key) is not None):
            continue
        if key == "metadata" and isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        elif key == "tags" and isinstance(value, list) and isinstance(target.get(key), list):
            target[key] = sorted(set(target[key]) | set(value))
        else:
            target[key] = value


def merge_trace(
    project_id: str,
    trace_id: str,
    copies: Iterable[TraceCopy],
    observations: list[dict[str, Any]],
) -> dict[str, Any]:
    """The trace as Langfuse's public API shows it, with its observations."""
    ordered = sorted(copies, key=lambda c: c.data.get("isRoot", False) is True)
    trace: dict[str, Any] = {
        "id": trace_id,
        "projectId": project_id,
        "timestamp": None,
        "name": None,
        "input": None,
        "output": None,
        "sessionId": None,
        "release": None,
        "version": None,
        "userId": None,
        "metadata": {},
        "tags": [],
        "public": False,
        "environment": "default",
    }
    root_ids: list[str] = []
    has_record = False
    for copy in ordered:
        data = dict(copy.data)
        if data.pop("isRoot", False):
            has_record = True
            if data.get("rootObservationId"):
                root_ids.append(str(data["rootObservationId"]))
        data.pop("rootObservationId", None)
        _merge_into(trace, data, TRACE_IMMUTABLE)
    if trace["timestamp"] is None and observations:
        trace["timestamp"] = min(o["startTime"] for o in observations)
    trace["tags"] = sorted(set(trace["tags"]))
    trace["shallow"] = not has_record
    trace["rootObservationIds"] = root_ids
    trace["observations"] = observations
    trace["latency"] = _latency(observations)
    trace["totalCost"] = _total_cost(observations)
    return trace


def _latency(observations: list[dict[str, Any]]) -> float | None:
    if not observations:
        return None
    start = min(_parse(o["startTime"]) for o in observations)
    end = max(_parse(o.get("endTime") or o["startTime"]) for o in observations)
    return round((end - start).total_seconds(), 3)


def _total_cost(observations: list[dict[str, Any]]) -> float:
    total = 0.0
    for obs in observations:
        cost = obs.get("costDetails") or {}
        if "total" in cost:
            total += float(cost["total"])
        else:
            total += sum(float(v) for v in cost.values())
    return round(total, 12)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class CollectorReader:
    """Merged views over a ``CollectorStore``."""

    def __init__(self, store: CollectorStore) -> None:
        self._store = store

    def observations(
        self, *, project_id: str | None = None, trace_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Merged observations, optionally of one project and/or trace."""
        return merge_observations(
            self._store.observation_copies(project_id=project_id, trace_id=trace_id)
        )

    def trace(self, trace_id: str, *, project_id: str | None = None) -> dict[str, Any] | None:
        """One trace with its observations; None when nothing of it arrived."""
        copies = self._store.trace_copies(project_id=project_id, trace_id=trace_id)
        observations = self.observations(project_id=project_id, trace_id=trace_id)
        if not copies and not observations:
            return None
        owner = copies[0].project_id if copies else observations[0]["projectId"]
        return merge_trace(
            owner,
            trace_id,
            [c for c in copies if c.project_id == owner],
            [o for o in observations if o["projectId"] == owner],
        )

    def traces(self, *, project_id: str | None = None) -> list[dict[str, Any]]:
        """Every trace with its observations, in order of first arrival."""
        copies: dict[tuple[str, str], list[TraceCopy]] = {}
        for copy in self._store.trace_copies(project_id=project_id):
            copies.setdefault((copy.project_id, copy.id), []).append(copy)
        observations: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for obs in self.observations(project_id=project_id):
            observations.setdefault((obs["projectId"], obs["traceId"]), []).append(obs)
        return [
            merge_trace(pid, tid, copies.get((pid, tid), []), observations.get((pid, tid), []))
            for pid, tid in self._store.trace_ids(project_id=project_id)
        ]

    def scores(self, *, project_id: str | None = None) -> list[dict[str, Any]]:
        """Stored scores (one per id)."""
        return self._store.scores(project_id=project_id)

    def duplicates(self, *, project_id: str | None = None) -> list[Duplicate]:
        """Observations received more than once, with whether the copies were identical."""
        return [
            Duplicate(o["projectId"], o["id"], o.get("traceId"), o["copies"], o["identicalCopies"])
            for o in self.observations(project_id=project_id)
            if o["copies"] > 1
        ]


def public_trace(trace: dict[str, Any]) -> dict[str, Any]:
    """A trace without its observations (list views)."""
    return {k: v for k, v in trace.items() if k != "observations"} | {
        "observations": [o["id"] for o in trace["observations"]]
    }


__all__ = ["CollectorReader", "Duplicate", "merge_observations", "merge_trace", "public_trace"]

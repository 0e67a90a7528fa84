"""Make a trace fit a size cap by cutting its largest fields, visibly (contract §3.3, §4.10).

Only ``input``, ``output`` and single metadata values (of the trace and of its observations)
are ever cut; ids, names, times, usage and cost are never touched. A cut field keeps its head
and ends with ``…[truncated N bytes]``; the observation (or the trace) gets
``opstrail_truncated: true`` in its metadata. Used by the exporters before sending and by the
dispatcher after a 413.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from opstrail.exporters.fields import json_text
from opstrail.tracing.limits import TRUNCATION_METADATA_KEY, truncate_json
from opstrail.tracing.tree import Observation, Trace
from opstrail.tracing.values import JsonValue

__all__ = ["MIN_FIELD_BYTES", "estimate_size", "shrink_trace"]

# A cut field keeps at least this much, so a value is never reduced to the marker alone.
MIN_FIELD_BYTES: Final = 1024
# Bytes an observation costs on the wire besides its big fields (ids, names, times, attributes).
_OBSERVATION_OVERHEAD: Final = 700

# Where a field lives: observation index (-1 = the trace), field name, metadata key.
_Locator = tuple[int, str, str | None]


def _size(value: JsonValue) -> int:
    return len(json_text(value).encode("utf-8"))


def _fields(trace: Trace) -> list[tuple[int, _Locator]]:
    found: list[tuple[int, _Locator]] = []

    def add(index: int, name: str, value: JsonValue, key: str | None = None) -> None:
        if value is not None:
            found.append((_size(value), (index, name, key)))

    add(-1, "input", trace.input)
    add(-1, "output", trace.output)
    for key, value in trace.metadata.items():
        add(-1, "metadata", value, key)
    for index, obs in enumerate(trace.observations):
        add(index, "input", obs.input)
        add(index, "output", obs.output)
        for key, value in obs.metadata.items():
            add(index, "metadata", value, key)
    return found


def estimate_size(trace: Trace) -> int:
    """Approximate wire size of ``trace``: its big fields plus a fixed cost per observation."""
    return sum(size for size, _ in _fields(trace)) + _OBSERVATION_OVERHEAD * (
        len(trace.observations) + 1
    )


def _field_value(trace: Trace, locator: _Locator) -> JsonValue:
    index, name, key = locator
    holder: Trace | Observation = trace if index < 0 else trace.observations[index]
    if key is None:
        value: JsonValue = getattr(holder, name)
        return value
    return holder.metadata[key]


def _replace(trace: Trace, locator: _Locator, value: JsonValue) -> Trace:
    index, name, key = locator
    holder: Trace | Observation = trace if index < 0 else trace.observations[index]
    if key is None:
        metadata = {**holder.metadata, TRUNCATION_METADATA_KEY: True}
        changes: dict[str, object] = {name: value, "metadata": metadata}
        updated = dataclasses.replace(holder, **changes)  # type: ignore[arg-type]
    else:
        metadata = {**holder.metadata, key: value, TRUNCATION_METADATA_KEY: True}
        updated = dataclasses.replace(holder, metadata=metadata)
    if isinstance(updated, Trace):
        return updated
    observations = list(trace.observations)
    observations[index] = updated
    return dataclasses.replace(trace, observations=tuple(observations))


def _cut_value(value: JsonValue, field_size: int, cap: int) -> JsonValue | None:
    """``value`` cut so that its JSON is smaller than ``field_size``, or ``None`` if it cannot
    shrink further. Escaping can make the cut text larger than ``cap`` in JSON, so the cap is
    halved until the field really shrinks."""
    while True:
        cut, changed = truncate_json(value, cap)
        if changed and _size(cut) < field_size:
            return cut
        if cap <= MIN_FIELD_BYTES:
            return None
        cap = max(cap // 2, MIN_FIELD_BYTES)


def shrink_trace(
    trace: Trace,
    max_bytes: int,
    *,
    measure: Callable[[Trace], int] = estimate_size,
) -> Trace:
    """Return ``trace`` with its largest fields cut until ``measure(trace) <= max_bytes``.

    The largest field is cut first, by the amount the trace is over (never below
    ``MIN_FIELD_BYTES``), then the trace is measured again. When nothing more can be cut the
    smallest reachable trace is returned: the caller checks the size again and reports a trace
    that still does not fit.

    Args:
        trace: the trace to fit.
        max_bytes: the cap, in the units of ``measure``.
        measure: the size of a trace on the wire; the exporters pass their real encoder.

    Returns:
        ``trace`` itself when it fits, else a copy with cut fields and truncation flags.
    """
    size = measure(trace)
    exhausted: set[_Locator] = set()
    while size > max_bytes:
        candidates = [
            item
            for item in _fields(trace)
            if item[1] not in exhausted and item[0] > MIN_FIELD_BYTES
        ]
        if not candidates:
            return trace
        field_size, locator = max(candidates, key=lambda item: item[0])
        # The marker adds a few dozen bytes: cut that much more than the overshoot.
        cap = max(field_size - (size - max_bytes) - 64, MIN_FIELD_BYTES)
        cut = _cut_value(_field_value(trace, locator), field_size, cap)
        if cut is None:
            exhausted.add(locator)
            continue
        trace = _replace(trace, locator, cut)
        size = measure(trace)
    return trace

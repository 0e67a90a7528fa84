"""The variable pool of a run: node outputs, system, environment and conversation variables.

Pools are layered: an iteration index or a loop round reads through to the pool it runs in and
writes its own children's outputs into its own layer, so parallel iteration items never see
each other's values. An assignment goes to the layer that already holds the variable
(conversation and loop variables), otherwise to the current layer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opstrail.runtime.dsl.graph import normalise_selector


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class VariablePool:
    """Values addressed by selectors ``(head, name, *path)``."""

    def __init__(self, parent: VariablePool | None = None) -> None:
        self._parent = parent
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def child(self) -> VariablePool:
        """A layer on top of this pool (one iteration index or loop round)."""
        return VariablePool(self)

    def set(self, head: str, name: str, value: Any) -> None:
        """Set ``head.name`` in this layer."""
        with self._lock:
            self._values.setdefault(head, {})[name] = value

    def set_outputs(self, node_id: str, outputs: Mapping[str, Any]) -> None:
        """Store a node's outputs in this layer."""
        with self._lock:
            self._values.setdefault(node_id, {}).update(outputs)

    def _layer_value(self, head: str, name: str) -> Any:
        pool: VariablePool | None = self
        while pool is not None:
            with pool._lock:
                bucket = pool._values.get(head)
                if bucket is not None and name in bucket:
                    return bucket[name]
            pool = pool._parent
        return MISSING

    def lookup(self, selector: Sequence[Any]) -> Any:
        """The value at ``selector``, or ``MISSING`` when nothing is there."""
        parts = normalise_selector(selector)
        if len(parts) < 2:
            return MISSING
        value = self._layer_value(parts[0], parts[1])
        for key in parts[2:]:
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return MISSING
        return value

    def get(self, selector: Sequence[Any], default: Any = None) -> Any:
        """The value at ``selector``, ``default`` when absent."""
        value = self.lookup(selector)
        return default if value is MISSING else value

    def assign(self, selector: Sequence[Any], value: Any) -> None:
        """Write ``selector`` where it lives (an outer layer for conversation and loop
        variables), or in this layer when it is new."""
        parts = normalise_selector(selector)
        head, name = parts[0], parts[1]
        pool: VariablePool | None = self
        while pool is not None:
            with pool._lock:
                bucket = pool._values.get(head)
                if bucket is not None and name in bucket:
                    bucket[name] = value
                    return
            pool = pool._parent
        self.set(head, name, value)

    def namespace(self, head: str) -> dict[str, Any]:
        """Every variable under ``head`` visible from this layer (outer layers first)."""
        chain: list[VariablePool] = []
        pool: VariablePool | None = self
        while pool is not None:
            chain.append(pool)
            pool = pool._parent
        merged: dict[str, Any] = {}
        for layer in reversed(chain):
            with layer._lock:
                merged.update(layer._values.get(head, {}))
        return merged


def to_text(value: Any) -> str:
    """A value as it appears inside a text template: strings as is, ``None`` as nothing,
    numbers plainly, anything else as JSON."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value, ensure_ascii=False, default=str)

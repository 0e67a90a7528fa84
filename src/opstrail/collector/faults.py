"""Fault injection: make the collector fail the way real servers and proxies fail.

A ``FaultConfig`` is plain data (set at start, through ``CollectorHandle.set_faults`` or through
``POST /_collector/faults``). A ``FaultInjector`` holds the running state (counters, the random
source, the "down until" time) behind a lock, because uvicorn's event loop and the test thread
both touch it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from opstrail.errors import ValidationError

WRITE_ENDPOINTS: Final = ("otel", "ingestion", "scores")
ENDPOINTS: Final = frozenset({*WRITE_ENDPOINTS, "projects", "health", "ready", "read", "admin"})


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which failures to inject, and on which endpoints.

    Attributes:
        error_rate: fraction (0..1) of requests answered with ``error_status``.
        error_status: the status of those random failures (e.g. 503; 429 adds Retry-After).
        fail_next: the next N requests answer ``fail_status``.
        fail_status: status for ``fail_next`` (429 adds Retry-After).
        retry_after_seconds: value of the Retry-After header on every injected 429.
        partial_error_rate: fraction of otherwise valid legacy events answered with a
            per-event 500 inside the 207 (and not stored).
        latency_seconds: added before answering each targeted request.
        down_for_seconds: an action: stop listening (connection refused) for this long,
            starting when the config is set.
        accept_only: authenticate and parse minimally, store nothing (throughput benchmarks).
        targets: endpoint names the error/latency faults apply to (``otel``, ``ingestion``,
            ``scores``, ``projects``, ``health``, ``read``).
        seed: seed of the random source, for repeatable error patterns.
        message: the ``message`` of injected error bodies, e.g. Langfuse Cloud's
            "Ingestion suspended: Usage threshold exceeded. Please upgrade your plan." with 403.
    """

    error_rate: float = 0.0
    error_status: int = 503
    fail_next: int = 0
    fail_status: int = 503
    retry_after_seconds: float = 1.0
    partial_error_rate: float = 0.0
    latency_seconds: float = 0.0
    down_for_seconds: float = 0.0
    accept_only: bool = False
    targets: tuple[str, ...] = WRITE_ENDPOINTS
    seed: int | None = None
    message: str = "Injected fault"

    def __post_init__(self) -> None:
        for name in ("error_rate", "partial_error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValidationError(f"{name} must be between 0 and 1, got {value}")
        for name in ("fail_next", "latency_seconds", "down_for_seconds", "retry_after_seconds"):
            if getattr(self, name) < 0:
                raise ValidationError(f"{name} must not be negative")
        unknown = sorted(set(self.targets) - ENDPOINTS)
        if unknown:
            raise ValidationError(f"unknown fault targets: {', '.join(unknown)}")
        for name in ("error_status", "fail_status"):
            if not 400 <= getattr(self, name) <= 599:
                raise ValidationError(f"{name} must be an HTTP error status (400-599)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build from JSON-like data (the admin endpoint); unknown keys are refused.

        Raises:
            ValidationError: an unknown key or a value of the wrong type.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(f"unknown fault settings: {', '.join(unknown)}")
        values = dict(data)
        if "targets" in values:
            targets = values["targets"]
            if not isinstance(targets, list | tuple) or not all(
                isinstance(t, str) for t in targets
            ):
                raise ValidationError("targets must be a list of endpoint names")
            values["targets"] = tuple(targets)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValidationError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """What to do to one request instead of answering it normally."""

    status: int | None
    latency_seconds: float
    headers: Mapping[str, str]
    message: str = "Injected fault"


class FaultInjector:
    """The running fault state of one collector; thread-safe."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._remaining_failures = 0
        self._random = random.Random()
        self._down_until = 0.0
        self._go_down: Callable[[float], None] | None = None
        self.set(config or FaultConfig())

    def attach_listener_control(self, go_down: Callable[[float], None]) -> None:
        """Let ``down_for_seconds`` really stop listening (set by the server runner)."""
        self._go_down = go_down

    @property
    def config(self) -> FaultConfig:
        """The current fault configuration."""
        with self._lock:
            return self._config

    def set(self, config: FaultConfig) -> None:
        """Replace the fault configuration; counters restart and ``down_for_seconds`` fires."""
        with self._lock:
            self._config = config
            self._remaining_failures = config.fail_next
            self._random = random.Random(config.seed)
            if config.down_for_seconds > 0:
                self._down_until = time.monotonic() + config.down_for_seconds
            else:
                self._down_until = 0.0
            go_down = self._go_down
        if config.down_for_seconds > 0 and go_down is not None:
            go_down(config.down_for_seconds)

    @property
    def accept_only(self) -> bool:
        """Whether to store nothing."""
        with self._lock:
            return self._config.accept_only

    def is_down(self) -> bool:
        """Whether the collector should behave as down right now."""
        with self._lock:
            return time.monotonic() < self._down_until

    def decide(self, endpoint: str) -> InjectedFault | None:
        """Decide the fault (if any) for one request to ``endpoint``."""
        with self._lock:
            config = self._config
            if time.monotonic() < self._down_until:
                # Reached only when the listener could not be closed (app used directly).
                return InjectedFault(503, 0.0, {}, "Service unavailable (collector down)")
            if endpoint not in config.targets:
                return None
            status: int | None = None
            if self._remaining_failures > 0:
                self._remaining_failures -= 1
                status = config.fail_status
            elif config.error_rate > 0 and self._random.random() < config.error_rate:
                status = config.error_status
            if status is None and config.latency_seconds <= 0:
                return None
            headers: dict[str, str] = {}
            if status == 429:
                headers["Retry-After"] = _retry_after_text(config.retry_after_seconds)
            return InjectedFault(status, config.latency_seconds, headers, config.message)

    def event_fails(self) -> bool:
        """Whether one legacy event gets a per-event 500 (``partial_error_rate``)."""
        with self._lock:
            rate = self._config.partial_error_rate
            return rate > 0 and self._random.random() < rate


def _retry_after_text(seconds: float) -> str:
    # Retry-After is whole seconds on the wire; round up so clients never wait too little.
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)

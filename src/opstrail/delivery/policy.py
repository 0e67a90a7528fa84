"""Delivery policy as pure functions: what to do with an outcome, and when to try again.

The dispatcher asks; nothing here touches the database, the clock or the network (the random
source and the current time are arguments), so every rule has a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from opstrail.exporters.base import Outcome

DEFAULT_RETRY_BASE_SECONDS: Final = 1.0
DEFAULT_RETRY_CAP_SECONDS: Final = 300.0
# A paused destination (401/403) is probed again at this interval even without a key change.
DEFAULT_PAUSE_PROBE_SECONDS: Final = 300.0
# Consecutive failed requests that open a destination's circuit breaker.
DEFAULT_BREAKER_THRESHOLD: Final = 3
DEFAULT_BREAKER_COOLDOWN_SECONDS: Final = 1.0
DEFAULT_BREAKER_COOLDOWN_CAP_SECONDS: Final = 30.0
# A Retry-After is authoritative; only an absurd one is bounded.
MAX_RETRY_AFTER_SECONDS: Final = 3600.0


class ActionKind(StrEnum):
    """What the dispatcher does with a trace (or a batch) after an answer."""

    DELIVERED = "delivered"  # mark delivered, record the acknowledgement
    RETRY = "retry"  # due again after ``delay``; counts an attempt
    PAUSE = "pause"  # keep the rows, pause the app's destination (401/403)
    BISECT = "bisect"  # a rejected batch: split it to find the poison trace
    SPLIT = "split"  # a too-large batch: split it, shrink a lone trace
    SWITCH_PATH = "switch_path"  # the destination wants the other ingestion path
    DEAD = "dead"  # give up, with the reason


@dataclass(frozen=True, slots=True)
class Action:
    """The decision for one outcome.

    ``delay`` (seconds) is set for ``RETRY``; ``state`` (the destination state shown to the
    user: ``unauthorized``, ``error``, ``unreachable``) and ``code`` explain it.
    """

    kind: ActionKind
    code: str
    delay: float | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Capped exponential backoff with jitter: ``base * 2**(attempt-1)``, at most ``cap``,
    then a random point in its upper half (so retries of one outage spread out)."""

    base: float = DEFAULT_RETRY_BASE_SECONDS
    cap: float = DEFAULT_RETRY_CAP_SECONDS

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("retry base must be > 0 and cap >= base")

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds to wait after the ``attempt``-th failure (from 1); ``jitter`` in [0, 1)."""
        exponent = min(max(attempt, 1) - 1, 32)
        ceiling = min(self.cap, self.base * (2.0**exponent))
        return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


def decide(
    outcome: Outcome,
    *,
    attempt: int,
    batch_size: int,
    jitter: float,
    schedule: RetrySchedule,
    retry_after: float | None = None,
    status_code: int | None = None,
    path_switched: bool = False,
) -> Action:
    """Decide what to do after ``outcome``.

    Args:
        outcome: the request's outcome (``batch_size`` > 1) or one trace's outcome.
        attempt: the attempt that just failed, from 1.
        batch_size: how many traces the outcome covers; a rejected or too-large batch of more
            than one trace is split rather than given up.
        jitter: a random number in [0, 1) for the backoff.
        schedule: the backoff schedule.
        retry_after: the server's ``Retry-After`` in seconds, when it sent one.
        status_code: the HTTP status, when there was an answer (``None``: network failure).
        path_switched: the other ingestion path was already tried for this batch.
    """
    if outcome is Outcome.DELIVERED:
        return Action(ActionKind.DELIVERED, "ok")
    if outcome is Outcome.RATE_LIMITED:
        if retry_after is None:
            return Action(ActionKind.RETRY, "rate_limited", delay=schedule.delay(attempt, jitter))
        delay = min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
        return Action(ActionKind.RETRY, "rate_limited", delay=delay)
    if outcome is Outcome.RETRY:
        state = "unreachable" if status_code is None else "error"
        code = "unreachable" if status_code is None else f"http_{status_code}"
        return Action(
            ActionKind.RETRY, code, delay=schedule.delay(attempt, jitter), state=state
        )
    if outcome is Outcome.UNAUTHORIZED:
        return Action(ActionKind.PAUSE, "unauthorized", state="unauthorized")
    if outcome is Outcome.FORBIDDEN:
        return Action(ActionKind.PAUSE, "ingestion_suspended", state="error")
    if outcome is Outcome.REJECTED:
        if batch_size > 1:
            return Action(ActionKind.BISECT, "rejected")
        return Action(ActionKind.DEAD, "rejected")
    if outcome is Outcome.TOO_LARGE:
        return Action(ActionKind.SPLIT, "too_large")
    if outcome is Outcome.WRONG_PATH:
        if not path_switched:
            return Action(ActionKind.SWITCH_PATH, "wrong_path")
        return Action(
            ActionKind.RETRY, "wrong_path", delay=schedule.delay(attempt, jitter), state="error"
        )
    raise ValueError(f"unknown outcome {outcome!r}")  # pragma: no cover - exhaustive enum


def is_expired(queued_at: datetime, now: datetime, max_age: timedelta) -> bool:
    """Whether a row waited longer than the age limit since it was queued (it is then
    dead-lettered). The dispatcher applies the same rule in SQL (``expire_old_rows``)."""
    return now - queued_at > max_age


@dataclass(slots=True)
class CircuitBreaker:
    """Per-destination breaker, so one broken Langfuse does not slow the others.

    After ``threshold`` consecutive failed requests the breaker opens for a cooldown that
    doubles up to ``cooldown_cap``; while open, that destination's rows wait without being
    sent (no attempt counted). A 429 opens it until the server's ``Retry-After``. The first
    request after the cooldown is the probe: success closes it, failure re-opens it longer.
    Mutable on purpose: one instance per destination, owned by one dispatcher.
    """

    threshold: int = DEFAULT_BREAKER_THRESHOLD
    cooldown: float = DEFAULT_BREAKER_COOLDOWN_SECONDS
    cooldown_cap: float = DEFAULT_BREAKER_COOLDOWN_CAP_SECONDS
    failures: int = 0
    open_until: float = 0.0
    trips: int = 0

    def allows(self, now: float) -> bool:
        """Whether a request may go out at monotonic time ``now``."""
        return now >= self.open_until

    def record_success(self) -> None:
        self.failures = 0
        self.trips = 0
        self.open_until = 0.0

    def record_failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.trips += 1
            wait = min(self.cooldown_cap, self.cooldown * (2.0 ** (self.trips - 1)))
            self.open_until = now + wait
            self.failures = 0

    def hold_until(self, now: float, seconds: float) -> None:
        """Open until ``now + seconds`` (a 429's Retry-After)."""
        self.open_until = max(self.open_until, now + seconds)

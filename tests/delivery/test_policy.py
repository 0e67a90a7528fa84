"""Delivery policy: outcome -> action, the backoff schedule, the age limit, the breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opstrail.delivery.policy import (
    MAX_RETRY_AFTER_SECONDS,
    ActionKind,
    CircuitBreaker,
    RetrySchedule,
    decide,
    is_expired,
)
from opstrail.exporters.base import Outcome

SCHEDULE = RetrySchedule(base=1.0, cap=300.0)


def _decide(outcome: Outcome, **kwargs: object) -> object:
    args: dict[str, object] = {
        "attempt": 1, "batch_size": 1, "jitter": 0.5, "schedule": SCHEDULE,
    }
    args.update(kwargs)
    return decide(outcome, **args)  # type: ignore[arg-type]


def test_schedule_doubles_until_cap_when_attempts_grow() -> None:
    """Delays double per attempt, stay within [ceiling/2, ceiling] and never pass the cap."""
    ceilings = [min(300.0, 2.0 ** (n - 1)) for n in range(1, 15)]
    for attempt, ceiling in enumerate(ceilings, start=1):
        assert SCHEDULE.delay(attempt, 0.0) == ceiling / 2
        assert SCHEDULE.delay(attempt, 1.0) == ceiling
    assert SCHEDULE.delay(100, 0.99) <= 300.0


def test_schedule_refuses_cap_below_base_when_built() -> None:
    """A schedule whose cap is below its base is refused."""
    with pytest.raises(ValueError):
        RetrySchedule(base=2.0, cap=1.0)


def test_decide_marks_delivered_when_accepted() -> None:
    """2xx -> delivered."""
    assert _decide(Outcome.DELIVERED).kind is ActionKind.DELIVERED  # type: ignore[attr-defined]


def test_decide_retries_with_backoff_when_server_error() -> None:
    """5xx -> retry after the backoff, destination state error; no answer -> unreachable."""
    action = _decide(Outcome.RETRY, attempt=3, status_code=503)
    assert (action.kind, action.delay, action.state, action.code) == (  # type: ignore[attr-defined]
        ActionKind.RETRY, SCHEDULE.delay(3, 0.5), "error", "http_503"
    )
    lost = _decide(Outcome.RETRY, status_code=None)
    assert (lost.state, lost.code) == ("unreachable", "unreachable")  # type: ignore[attr-defined]


def test_decide_waits_retry_after_when_rate_limited() -> None:
    """429 -> retry exactly after Retry-After, even beyond the backoff cap; absurd values are
    bounded; without the header the backoff applies."""
    assert _decide(Outcome.RATE_LIMITED, retry_after=600.0).delay == 600.0  # type: ignore[attr-defined]
    assert _decide(Outcome.RATE_LIMITED, retry_after=1e9).delay == MAX_RETRY_AFTER_SECONDS  # type: ignore[attr-defined]
    assert _decide(Outcome.RATE_LIMITED, attempt=2).delay == SCHEDULE.delay(2, 0.5)  # type: ignore[attr-defined]


def test_decide_pauses_when_unauthorized_or_forbidden() -> None:
    """401 pauses as unauthorized; 403 (usage suspended) pauses as error."""
    unauthorized = _decide(Outcome.UNAUTHORIZED)
    forbidden = _decide(Outcome.FORBIDDEN)
    assert (unauthorized.kind, unauthorized.state) == (ActionKind.PAUSE, "unauthorized")  # type: ignore[attr-defined]
    assert (forbidden.kind, forbidden.state, forbidden.code) == (  # type: ignore[attr-defined]
        ActionKind.PAUSE, "error", "ingestion_suspended"
    )


def test_decide_bisects_batch_and_kills_single_when_rejected() -> None:
    """400 on a batch -> bisect; on a single trace -> dead."""
    assert _decide(Outcome.REJECTED, batch_size=8).kind is ActionKind.BISECT  # type: ignore[attr-defined]
    assert _decide(Outcome.REJECTED, batch_size=1).kind is ActionKind.DEAD  # type: ignore[attr-defined]


def test_decide_splits_when_too_large() -> None:
    """413 -> split (or shrink a lone trace)."""
    assert _decide(Outcome.TOO_LARGE).kind is ActionKind.SPLIT  # type: ignore[attr-defined]


def test_decide_switches_path_once_when_wrong_path() -> None:
    """A wrong path switches once; if the other path is wrong too, retry later."""
    assert _decide(Outcome.WRONG_PATH).kind is ActionKind.SWITCH_PATH  # type: ignore[attr-defined]
    again = _decide(Outcome.WRONG_PATH, path_switched=True)
    assert (again.kind, again.code) == (ActionKind.RETRY, "wrong_path")  # type: ignore[attr-defined]


def test_is_expired_only_when_older_than_limit() -> None:
    """The age limit is strict: exactly at the limit is not expired."""
    now = datetime(2026, 11, 27, tzinfo=UTC)
    limit = timedelta(days=7)
    assert not is_expired(now - limit, now, limit)
    assert is_expired(now - limit - timedelta(seconds=1), now, limit)


def test_breaker_opens_after_threshold_and_closes_on_success() -> None:
    """Three failures open the breaker for a doubling cooldown; a success closes it."""
    breaker = CircuitBreaker(threshold=3, cooldown=1.0, cooldown_cap=4.0)
    for _ in range(2):
        breaker.record_failure(100.0)
    assert breaker.allows(100.0)
    breaker.record_failure(100.0)
    assert not breaker.allows(100.5) and breaker.allows(101.0)
    for _ in range(3):
        breaker.record_failure(101.0)
    assert not breaker.allows(102.9) and breaker.allows(103.0)
    for _ in range(9):
        breaker.record_failure(103.0)
    assert breaker.open_until == 107.0  # capped at 4 s
    breaker.record_success()
    assert breaker.allows(103.0)


def test_breaker_holds_until_retry_after_when_rate_limited() -> None:
    """A 429 keeps the breaker open until its Retry-After."""
    breaker = CircuitBreaker()
    breaker.hold_until(50.0, 2.0)
    assert not breaker.allows(51.9) and breaker.allows(52.0)

"""HTTP helpers: Retry-After parsing and the severity order of outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from opstrail.exporters.base import Outcome
from opstrail.exporters.http import parse_retry_after, worst


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    """Delta-seconds and HTTP dates both give seconds to wait; garbage gives None."""
    now = datetime(2026, 8, 22, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Sat, 22 Aug 2026 10:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Sat, 22 Aug 2026 09:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_worst_puts_destination_problems_before_payload_problems() -> None:
    """Auth and path problems outrank retries, which outrank a rejected payload."""
    assert worst([Outcome.DELIVERED, Outcome.REJECTED, Outcome.RETRY]) is Outcome.RETRY
    assert worst([Outcome.RETRY, Outcome.UNAUTHORIZED]) is Outcome.UNAUTHORIZED
    assert worst([Outcome.WRONG_PATH, Outcome.RATE_LIMITED]) is Outcome.WRONG_PATH
    assert worst([]) is Outcome.DELIVERED

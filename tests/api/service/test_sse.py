"""SSE framing: Dify's ``data:`` frames, pings while the run is quiet, an error event when the
run raises."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from opstrail.api.sse import PING, _frames, format_event
from opstrail.errors import RuntimeFailure


def _collect(events: Iterator[dict[str, Any]], ping_interval: float) -> list[str]:
    async def _run() -> list[str]:
        return [frame async for frame in _frames(events, ping_interval)]

    return asyncio.run(_run())


def test_sse_frames_events_and_pings_while_quiet() -> None:
    """Each event is one data frame; a pause longer than the interval yields a ping."""
    def events() -> Iterator[dict[str, Any]]:
        yield {"event": "message", "answer": "é"}
        time.sleep(0.3)
        yield {"event": "message_end"}

    frames = _collect(events(), ping_interval=0.1)
    assert frames[0] == 'data: {"event": "message", "answer": "é"}\n\n'
    assert PING in frames
    assert frames[-1] == format_event({"event": "message_end"})


def test_sse_ends_with_error_event_when_the_run_raises() -> None:
    """An opstrail error inside the run becomes a final error event with its code."""
    def events() -> Iterator[dict[str, Any]]:
        yield {"event": "message", "answer": "a"}
        raise RuntimeFailure("model broke", code="completion_request_error")

    frames = _collect(events(), ping_interval=5)
    assert frames[-1] == format_event(
        {"event": "error", "status": 400, "code": "completion_request_error", "message": "model broke"})

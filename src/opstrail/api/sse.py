"""Server-sent events as Dify writes them: ``data: {json}\\n\\n`` per event (the event name is
the ``event`` field), and ``event: ping`` while nothing else is sent.

``sse_response`` runs a synchronous event iterator in a worker thread, so a slow model never
blocks the event loop and pings keep proxies from closing the connection. If the client goes
away, the iterator is still drained in its thread: a run is always completed and stored.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Final

from fastapi.responses import StreamingResponse

from opstrail.errors import OpstrailError

PING_INTERVAL_SECONDS: Final = 10.0
PING: Final = "event: ping\n\n"
_DONE: Final = object()


def format_event(event: Mapping[str, Any]) -> str:
    """One SSE frame for a Dify event dict."""
    return "data: " + json.dumps(event, ensure_ascii=False, default=str) + "\n\n"


async def _frames(events: Iterator[Mapping[str, Any]], ping_interval: float) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    def _produce() -> None:
        try:
            for event in events:
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except OpstrailError as exc:
            loop.call_soon_threadsafe(
                queue.put_nowait,
                {"event": "error", "status": 400, "code": exc.code, "message": exc.message},
            )
        except Exception as exc:  # worker boundary: the stream must end with an error event
            loop.call_soon_threadsafe(
                queue.put_nowait,
                {"event": "error", "status": 500, "code": "internal_error",
                 "message": f"internal error: {type(exc).__name__}"},
            )
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    threading.Thread(target=_produce, name="sse-run", daemon=True).start()
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), timeout=ping_interval)
        except TimeoutError:
            yield PING
            continue
        if item is _DONE:
            return
        assert isinstance(item, Mapping)
        yield format_event(item)


def sse_response(
    events: Iterator[Mapping[str, Any]], *, ping_interval: float = PING_INTERVAL_SECONDS
) -> StreamingResponse:
    """A ``text/event-stream`` response for an event iterator."""
    return StreamingResponse(
        _frames(events, ping_interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

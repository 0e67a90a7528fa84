"""Run a collector app under uvicorn, in the foreground (CLI) or in a background thread (tests).

``CollectorServer`` can also stop listening for a while (fault ``down_for_seconds``): it closes
the listening socket and the idle keep-alive connections, so clients get "connection refused",
then listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette

from opstrail.collector.state import CollectorState

logger = logging.getLogger(__name__)


class _WakeableServer(uvicorn.Server):
    """uvicorn's server whose 0.1 s housekeeping sleep can be cut short by ``wake()``, so a
    test's collector stops at once instead of on the next tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake_event: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake_event = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_event.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    def wake(self) -> None:
        """Run the next tick now (called in the server's loop)."""
        if self._wake_event is not None:
            self._wake_event.set()


class CollectorServer:
    """One uvicorn server for one collector app on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        app: Starlette,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        self.app = app
        self.host = host
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only
        # for such sockets, and without it every answer waits ~40 ms for a delayed ACK.
        self._socket = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
        )
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        # Listen now, not when uvicorn starts: the URL is printed (and handed to callers)
        # before serving begins, and a bound socket that is not listening refuses
        # connections. Early clients wait in the backlog until the loop accepts them.
        self._socket.listen(2048)
        self.port: int = self._socket.getsockname()[1]
        self._config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level=log_level,
            access_log=access_log,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = _WakeableServer(self._config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._down_handle: asyncio.TimerHandle | None = None
        self._loop_thread: int | None = None
        self.state.faults.attach_listener_control(self.go_down)

    @property
    def state(self) -> CollectorState:
        """The served collector's state."""
        state: CollectorState = self.app.state.collector
        return state

    @property
    def url(self) -> str:
        """The base URL (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await self._server.serve(sockets=[self._socket])

    def run(self) -> None:
        """Serve in the current thread until interrupted (uvloop when installed)."""
        with asyncio.Runner(loop_factory=self._config.get_loop_factory()) as runner:
            runner.run(self._serve())

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a daemon thread; returns once the server listens.

        Raises:
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        self._thread = threading.Thread(target=self.run, name="opstrail-collector", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the collector did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: nothing to wake
                loop.call_soon_threadsafe(self._server.wake)
        if self._thread is not None:
            self._thread.join(timeout)
        self.state.store.close()

    def go_down(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` (thread-safe; no-op before start).

        From another thread it returns once the listener is closed, so the caller's next
        connection attempt is refused; from the server's own loop (the admin endpoint) it
        closes right after the current callback.
        """
        loop = self._loop
        if loop is None or not self._server.started:
            return
        if threading.get_ident() == self._loop_thread:
            loop.call_soon(self._close_listeners, seconds)
            return
        closed = threading.Event()

        def close() -> None:
            try:
                self._close_listeners(seconds)
            finally:
                closed.set()

        loop.call_soon_threadsafe(close)
        closed.wait(5.0)

    def _close_listeners(self, seconds: float) -> None:
        assert self._loop is not None
        for server in self._server.servers:
            server.close()
        # Idle keep-alive connections would otherwise still reach the app while "down".
        for connection in list(self._server.server_state.connections):
            connection.shutdown()
        if self._down_handle is not None:
            self._down_handle.cancel()
        self._down_handle = self._loop.call_later(
            seconds, lambda: asyncio.ensure_future(self._reopen())
        )

    async def _reopen(self) -> None:
        self._down_handle = None
        if self._server.should_exit:
            return
        config = self._config
        server_state = self._server.server_state
        app_state = self._server.lifespan.state

        def create_protocol(_loop: Any = None) -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=server_state, app_state=app_state, _loop=_loop
            )
            return protocol

        loop = asyncio.get_running_loop()
        for attempt in range(50):
            try:
                server = await loop.create_server(
                    create_protocol, host=self.host, port=self.port, reuse_address=True
                )
            except OSError:
                logger.warning("collector port %s busy, retrying (%d)", self.port, attempt)
                await asyncio.sleep(0.1)
                continue
            self._server.servers = [server]
            return
        logger.error("collector could not listen again on port %s", self.port)

    def __enter__(self) -> CollectorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

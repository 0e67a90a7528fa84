"""Running a dispatcher: in a thread of the server (embedded), or as ``opstrail worker``.

Shutdown is bounded: ``stop(grace)`` asks the dispatcher to stop (requests not yet sent are
released at once), waits up to ``grace`` seconds for the request in flight, and then gives
every row still leased back to the outbox itself. A SIGKILLed worker releases nothing, and its
rows become due again when their lease expires.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from opstrail.delivery.dispatcher import Dispatcher

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 10.0


class DispatcherThread:
    """A dispatcher running in a daemon thread (the server's embedded dispatcher)."""

    def __init__(self, dispatcher: Dispatcher, *, name: str = "opstrail-dispatcher") -> None:
        self.dispatcher = dispatcher
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failure: BaseException | None = None

    def start(self) -> None:
        """Take the exclusive lease (SQLite) and start dispatching.

        Raises:
            DeliveryError: another dispatcher holds the SQLite lease.
        """
        self.dispatcher.acquire_single_lease()
        self._thread.start()

    def _run(self) -> None:
        try:
            self.dispatcher.run()
        except BaseException as exc:  # thread boundary: keep the reason for stop()
            self._failure = exc
            log.exception("dispatcher thread ended with an error")

    @property
    def alive(self) -> bool:
        """Whether the dispatcher thread is running."""
        return self._thread.is_alive()

    def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> bool:
        """Stop within ``grace`` seconds; returns ``True`` when the thread ended in time.

        When the request in flight outlasts the grace, its rows are released here: another
        dispatcher may send them again (at-least-once), none is lost.
        """
        self.dispatcher.request_stop()
        if self._thread.is_alive():
            self._thread.join(grace)
        if self._thread.is_alive():
            log.warning("dispatcher still busy after %.1fs; releasing its rows", grace)
            self.dispatcher.release_all()
            return False
        return True

    @property
    def failure(self) -> BaseException | None:
        """Why the dispatcher thread ended, if it failed."""
        return self._failure


def run_in_foreground(dispatcher: Dispatcher, *, grace: float = DEFAULT_GRACE_SECONDS) -> int:
    """Run ``dispatcher`` until SIGTERM or SIGINT, then stop within ``grace`` seconds.

    Returns:
        The process exit code: 0 after a clean stop, 1 when the dispatcher failed.
    """
    runner = DispatcherThread(dispatcher, name="opstrail-worker")
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker %s: signal %d, stopping", dispatcher.owner, signum)
        stop.set()

    previous = {
        sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        runner.start()
        while not stop.is_set() and runner.alive:
            stop.wait(0.2)
        runner.stop(grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if runner.failure is not None else 0

"""Encoding recorded traces after their run commits, off the request path.

``record_trace`` writes the trace info in the run's transaction. In a server, building and
encoding the trace for its exporter (a few hundred microseconds for a chat message) would add
to every request, so the server attaches a ``WireEncoder`` to its session factory: the
recording session lists the traces to encode, and when (and only when) that transaction
commits, they are handed to the encoder's thread, which builds, encodes and stores them
(``delivery.outbox.store_encoded``). A rolled-back run hands over nothing.

Nothing is lost if the encoder is late, full or stopped: a row without a stored body is built
from its trace info by the dispatcher, as before encoding at record time existed. The body is
stored only while its row is untouched since it was recorded (docs/decisions.md, "Encoding at
record time").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from opstrail.delivery.outbox import store_encoded
from opstrail.exporters.base import EncodedTrace, IngestionPath
from opstrail.exporters.registry import record_encoder
from opstrail.tracing.build import BuildOptions, build_trace
from opstrail.tracing.info import RootTraceInfo
from opstrail.tracing.policy import root_trace_id

log = logging.getLogger(__name__)

# Keys of ``Session.info``: the session factory's encoder, and the traces its open
# transaction recorded.
_ENCODER_KEY: Final = "opstrail.wire_encoder"
_RECORDED_KEY: Final = "opstrail.encode_after_commit"


@dataclass(frozen=True, slots=True)
class EncodeJob:
    """One committed outbox row to build and encode: its id, trace info and path."""

    row_id: int
    info: RootTraceInfo
    path: IngestionPath


@dataclass(slots=True)
class EncoderStats:
    """What an encoder did since it started (read by tests and the benchmark)."""

    encoded: int = 0  # encoded and offered to the store
    stored: int = 0  # of those, stored (the others' rows had moved on: claimed, re-queued)
    failed: int = 0  # failed to encode or to store: built at send time instead
    dropped: int = 0  # refused while the queue was full: built at send time instead
    transactions: int = 0  # store transactions committed


@dataclass(slots=True)
class _Queue:
    jobs: deque[EncodeJob] = field(default_factory=deque)
    busy: bool = False


class WireEncoder:
    """A background thread that builds, encodes and stores committed traces.

    Args:
        session_factory: where the bodies are stored (its own short transactions).
        options: the deployment's build options (the dispatcher builds with the same).
        max_queued: traces waiting at most; beyond it a trace is left to the dispatcher.
        batch: traces stored per transaction at most.
        linger: how long the thread waits for more traces after the first, so that under load
            one transaction stores several (a transaction costs about as much as encoding a
            chat message) and the request threads are not woken for every trace.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        options: BuildOptions,
        *,
        max_queued: int = 10_000,
        batch: int = 64,
        linger: float = 0.01,
    ) -> None:
        self._sessions = session_factory
        self._linger = linger
        self._flushing = 0
        self._options = options
        self._max_queued = max_queued
        self._batch = batch
        self._queue = _Queue()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = EncoderStats()

    def start(self) -> None:
        """Start the encoding thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="opstrail-encoder", daemon=True
            )
            self._thread.start()

    def submit(self, jobs: list[EncodeJob]) -> None:
        """Queue committed traces (cheap: the request thread only appends)."""
        with self._ready:
            if self._stopping:  # a commit after ``stop``: left to the dispatcher
                self.stats.dropped += len(jobs)
                return
            room = self._max_queued - len(self._queue.jobs)
            if room < len(jobs):
                self.stats.dropped += len(jobs) - max(room, 0)
                jobs = jobs[: max(room, 0)]
            idle = not self._queue.jobs
            self._queue.jobs.extend(jobs)
            if idle or len(self._queue.jobs) >= self._batch:
                self._ready.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued trace is stored; ``False`` if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._ready:
            self._flushing += 1  # no lingering meanwhile
            self._ready.notify_all()
            try:
                while self._queue.jobs or self._queue.busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._ready.wait(min(left, 0.05))
            finally:
                self._flushing -= 1
        return True

    def stop(self, grace: float = 2.0) -> None:
        """Store what is queued within ``grace`` seconds, then stop; the rest is built by
        the dispatcher at send time."""
        self.flush(grace)
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=grace)
            if not self._thread.is_alive():
                self._thread = None

    def _take(self) -> list[EncodeJob] | None:
        with self._ready:
            while not self._queue.jobs and not self._stopping:
                self._queue.busy = False
                self._ready.notify_all()  # wakes ``flush``
                self._ready.wait()
            linger_until = time.monotonic() + self._linger
            while (
                len(self._queue.jobs) < self._batch
                and not (self._stopping or self._flushing)
                and (left := linger_until - time.monotonic()) > 0
            ):
                self._ready.wait(left)
            if self._stopping:
                return None
            count = min(self._batch, len(self._queue.jobs))
            self._queue.busy = True
            return [self._queue.jobs.popleft() for _ in range(count)]

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            encoded = [(job.row_id, body) for job in jobs if (body := self._encode(job))]
            self.stats.encoded += len(encoded)
            if self._store(encoded) is None and len(encoded) > 1:
                # One body can fail a batch (a deadlock with a concurrent re-queue on
                # PostgreSQL, say): store the others one by one.
                for one in encoded:
                    self._store([one])

    def _store(self, encoded: list[tuple[int, EncodedTrace]]) -> int | None:
        """Store ``encoded`` in one transaction; how many were stored, ``None`` on failure
        (the rows stay; the dispatcher builds them at send time)."""
        try:
            # A Core transaction, not a session: lighter, and no session events.
            with self._sessions.kw["bind"].begin() as connection:
                stored = store_encoded(connection, encoded)
        except Exception:  # the worker-thread boundary: log, count, go on
            log.exception("storing %d encoded trace(s) failed", len(encoded))
            if len(encoded) == 1:
                self.stats.failed += 1
            return None
        self.stats.stored += stored
        self.stats.transactions += 1
        return stored

    def _encode(self, job: EncodeJob) -> EncodedTrace | None:
        try:
            return encode_record(job.info, self._options, job.path)
        except Exception:  # one trace's bug must not stop the others; built at send time
            log.exception("encoding outbox row %s failed", job.row_id)
            self.stats.failed += 1
            return None


def encode_record(
    info: RootTraceInfo, options: BuildOptions, path: IngestionPath
) -> EncodedTrace | None:
    """``info`` built and encoded as ``path``'s exporter stores it, or ``None`` when that
    path builds its requests at send time.

    Raises:
        ValueError: the built trace is not the trace of ``info``; or whatever a failing
            builder or encoder raises.
    """
    encoder = record_encoder(path)
    if encoder is None:
        return None
    body = encoder(build_trace(info, options))
    if body.trace_id != root_trace_id(info):
        raise ValueError(f"built trace {body.trace_id} is not {root_trace_id(info)}")
    return body


def attach(session_factory: sessionmaker[Session], encoder: WireEncoder) -> None:
    """Have sessions of ``session_factory`` hand the traces they record to ``encoder`` when
    their outermost transaction commits, and forget them when it (or the savepoint they were
    recorded in) ends any other way."""
    session_factory.configure(info={_ENCODER_KEY: encoder})
    event.listen(session_factory, "after_commit", _hand_over)
    event.listen(session_factory, "after_soft_rollback", _forget_rolled_back)
    event.listen(session_factory, "after_transaction_end", _forget_uncommitted)


def attached(session: Session) -> bool:
    """Whether ``session``'s factory has an encoder (else the caller encodes in the
    transaction)."""
    return _ENCODER_KEY in session.info


def defer(session: Session, job: EncodeJob) -> None:
    """List ``job`` for encoding after ``session`` commits (its factory has an encoder:
    ``attached``)."""
    # Each job remembers the savepoint it was recorded in (None: no savepoint), so that
    # rolling that savepoint back forgets it.
    recorded: list[tuple[SessionTransaction | None, EncodeJob]] = session.info.setdefault(
        _RECORDED_KEY, []
    )
    recorded.append((session.get_nested_transaction(), job))


def _hand_over(session: Session) -> None:
    # ``after_commit`` also runs when a savepoint is released: the rows are not committed
    # yet, and the outer transaction may still roll back.
    if session.in_nested_transaction():
        return
    recorded: list[tuple[SessionTransaction | None, EncodeJob]] | None = session.info.pop(
        _RECORDED_KEY, None
    )
    if recorded:
        encoder: WireEncoder = session.info[_ENCODER_KEY]
        encoder.submit([job for _savepoint, job in recorded])


def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    # A rolled-back savepoint takes its rows with it: forget the jobs recorded in it or in
    # savepoints inside it. (The outermost transaction is ``_forget_uncommitted``'s.)
    if not previous_transaction.nested:
        return
    recorded = session.info.get(_RECORDED_KEY)
    if recorded:
        recorded[:] = [
            (savepoint, job) for savepoint, job in recorded
            if not _within(savepoint, previous_transaction)
        ]


def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (``after_commit`` took the list
    # before this runs): its rows do not exist, and SQLite may give their ids to the next
    # rows, so nothing of it may be encoded.
    if transaction.parent is None:
        session.info.pop(_RECORDED_KEY, None)


def _within(savepoint: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while savepoint is not None:
        if savepoint is outer:
            return True
        savepoint = savepoint.parent
    return False

"""The dispatcher: lease due outbox rows, send them per destination, record each outcome.

One ``run_once`` is one cycle: claim a batch (a lease in the database, committed at once),
resolve each app's destination, send its traces in requests per destination, then write every
row's outcome in one transaction. A trace encoded when it was recorded, in the format of the
destination's exporter, is sent as stored; any other is built from its trace info now. What a destination does not
answer with a 2xx (or a fully successful 207) is never marked delivered; what it acknowledged
is never sent to it again (``outbox_acks``).

Outcome handling lives in ``opstrail.delivery.policy``; this module applies it:

- a rejected batch (whole-request 400) is bisected down to the poison trace, and only that
  trace is dead-lettered;
- a too-large batch is split, and a lone too-large trace is shrunk once;
- a wrong ingestion path switches the destination to the other path and re-sends;
- 401/403 pause the app's destination: rows are kept and wait until the credentials change
  (checked every ``resume_check_seconds``) or the probe interval passes;
- a per-destination circuit breaker keeps one broken Langfuse from slowing the others.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from opstrail.delivery import codec
from opstrail.delivery.metrics import DeliveryMetrics
from opstrail.delivery.policy import (
    DEFAULT_PAUSE_PROBE_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    Action,
    ActionKind,
    CircuitBreaker,
    RetrySchedule,
    decide,
)
from opstrail.delivery.ports import DestinationResolver, ExporterFactory, PathProbe
from opstrail.errors import DeliveryError, OpstrailError
from opstrail.exporters.base import (
    Destination,
    EncodedTrace,
    EncodingExporter,
    Exporter,
    ExportResult,
    IngestionPath,
    Outcome,
)
from opstrail.ids import score_id as make_score_id
from opstrail.storage.base import utcnow
from opstrail.storage.repos import outbox as repo
from opstrail.storage.tables.outbox import OutboxState
from opstrail.tracing.info import FeedbackInfo, RootTraceInfo
from opstrail.tracing.tree import Score, Trace

log = logging.getLogger(__name__)

# The SQLite dispatcher lease: only its holder sends (serve's thread or one `opstrail worker`).
SQLITE_LEASE: Final = "sqlite-dispatcher"
# Keep each request under the Langfuse limits (contract §3.3, §4.10) by payload size.
DEFAULT_MAX_BATCH_BYTES: Final = 3_000_000
MESSAGE_CAP: Final = 1000
# A lone trace answered 413 is shrunk by half at most this many times (1/256 of its size).
MAX_SHRINK_ROUNDS: Final = 8
# Measured on the sample traces: an OTLP body is about 2.6 times the stored JSON, a legacy
# batch about the same size (bench/bench_serialize.py figures).
WIRE_BYTES_PER_PAYLOAD_BYTE: Final = {IngestionPath.OTLP: 2.8, IngestionPath.LEGACY: 1.1}

TraceBuilder = Callable[[RootTraceInfo], Trace]
# An exporter, and the same exporter again when it takes encoded traces (else ``None``).
_Exporters = tuple[Exporter, EncodingExporter | None]
ScoreBuilder = Callable[[FeedbackInfo], Score | None]


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    """How a dispatcher batches, leases, retries and keeps house.

    Args:
        batch_size: rows claimed per cycle, and the most traces in one request.
        max_batch_bytes: most (estimated) request body bytes in one request.
        lease_seconds: how long claimed rows stay leased (a crash frees them after this).
        poll_interval: sleep when nothing is due; doubled on every further idle cycle up to
            ``max_idle_interval``, and back to this as soon as a row is claimed.
        max_idle_interval: the longest sleep of an idle dispatcher.
        linger: after a cycle that claimed fewer than ``batch_size // 8`` rows, wait this
            long before claiming again, so the next request carries more traces (the fixed
            cost of a cycle is paid once per batch, not once per trace).
        max_row_age: rows waiting longer are dead-lettered (paused ones too).
        retention: delivered rows keep their payload this long.
        schedule: backoff of retries.
        pause_probe_seconds: a paused destination is tried again after this, key change or not.
        resume_check_seconds: how often paused apps are checked for new credentials.
        maintenance_seconds: how often the age limit and the retention are applied.
        single_lease: name of the exclusive dispatcher lease to hold (SQLite), or ``None``.
        send_threads: destinations sent to in parallel within one cycle.
        cycles_in_flight: cycles ``run`` keeps going at once while a backlog lasts: one
            cycle's request waits on the network (and its gzip runs without the GIL) while
            another claims, frames or records. Idle, only one cycle polls.
        reprobe_seconds: a destination whose server was last probed longer ago than this is
            probed again (``GET /api/public/health``) before sending, unless its path is
            fixed by configuration; servers get upgraded under a stored configuration.
        reprobe_retry_seconds: after a failed probe, wait this long before the next one.
    """

    batch_size: int = 200
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    lease_seconds: float = 60.0
    poll_interval: float = 0.05
    max_idle_interval: float = 0.25
    linger: float = 0.2
    max_row_age: timedelta = timedelta(days=7)
    retention: timedelta = timedelta(days=30)
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    pause_probe_seconds: float = DEFAULT_PAUSE_PROBE_SECONDS
    resume_check_seconds: float = 2.0
    maintenance_seconds: float = 60.0
    single_lease: str | None = None
    send_threads: int = 4
    cycles_in_flight: int = 2
    reprobe_seconds: float = 86_400.0
    reprobe_retry_seconds: float = 3_600.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_batch_bytes < 1 or self.lease_seconds <= 0:
            raise ValueError("batch_size, max_batch_bytes and lease_seconds must be positive")
        if self.cycles_in_flight < 1:
            raise ValueError("cycles_in_flight must be at least 1")


class _Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PAUSE = "pause"
    DEAD = "dead"
    DEFER = "defer"  # not sent (breaker open, app paused): due later, no attempt counted
    RELEASE = "release"  # not sent (shutdown): lease given back untouched
    UNROUTED = "unrouted"  # the app has no destination any more


# Verdicts that end a row's delivery: its stored wire body is dropped with the outcome.
_SETTLED: Final = frozenset({_Verdict.DELIVERED, _Verdict.DEAD, _Verdict.UNROUTED})


@dataclass(slots=True)
class _Item:
    """One claimed row on its way: the row, its stored or built trace (or score), and its
    verdict."""

    row: repo.ClaimedRow
    send_by: float = float("inf")  # monotonic; later, the row's lease may run out mid-request
    trace: Trace | None = None
    encoded: EncodedTrace | None = None
    feedback: FeedbackInfo | None = None
    verdict: _Verdict | None = None
    code: str | None = None
    message: str | None = None
    delay: float = 0.0
    state: str | None = None
    shrink_rounds: int = 0

    @property
    def trace_id(self) -> str:
        return self.trace.id if self.trace is not None else self.row.trace_id


@dataclass(slots=True)
class _AppNote:
    """What one cycle learnt about an app's destination."""

    destination: Destination | None = None
    fingerprint: str | None = None
    success: bool = False
    failure: tuple[str, str, str] | None = None  # (state, code, message)
    pause: tuple[str, str, str] | None = None
    unpause: bool = False


def owner_id() -> str:
    """A dispatcher identity unique across hosts and processes (lease owner)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def credentials_fingerprint(destination: Destination) -> str:
    """A hash of what makes a destination's requests succeed or fail (host, keys, project):
    a paused app resumes when it changes. The keys themselves are never stored."""
    material = "\n".join(
        (destination.host, destination.public_key, destination.secret_key, destination.project_id or "")
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _cap(text: str) -> str:
    return text if len(text) <= MESSAGE_CAP else text[: MESSAGE_CAP - 1] + "…"


class Dispatcher:
    """Sends due outbox rows to their destinations; ``run`` keeps up to
    ``options.cycles_in_flight`` cycles going at once, each on rows it alone has leased.

    Args:
        session_factory: opens the dispatcher's own transactions.
        resolver: finds an app's destination (with decrypted keys) at send time.
        exporter_for: the exporter of a destination (one HTTP client per destination).
        build_trace: root record -> trace, with the deployment's build options.
        build_score: rating -> score, or ``None`` for a revoked rating (delete it).
        options: batching, leases, retries.
        metrics: counters to feed, if any.
        owner: lease owner id (default: host, pid and a random suffix).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        resolver: DestinationResolver,
        exporter_for: ExporterFactory,
        *,
        build_trace: TraceBuilder,
        build_score: ScoreBuilder,
        options: DispatchOptions | None = None,
        metrics: DeliveryMetrics | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
        probe_path: PathProbe | None = None,
    ) -> None:
        self._sessions = session_factory
        self._resolver = resolver
        self._exporter_for = exporter_for
        self._build_trace = build_trace
        self._build_score = build_score
        self.options = options or DispatchOptions()
        self._metrics = metrics
        self.owner = owner or owner_id()
        self._rng = rng or random.Random()
        # Each exporter with itself again when it takes encoded traces: a runtime protocol
        # check walks the protocol's members, about the cost of a small statement, so it is
        # done once per exporter, not on every use.
        self._exporters: dict[tuple[str, IngestionPath], _Exporters] = {}
        self._exporters_lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._paths: dict[str, IngestionPath] = {}
        self._probe_path = probe_path
        self._next_probe: dict[str, float] = {}
        self._stop = threading.Event()
        self._next_resume_check = 0.0
        self._next_maintenance = 0.0
        self._next_lease_renewal = 0.0
        self._pool: ThreadPoolExecutor | None = None
        # Cycles in flight take turns to write: SQLite has one writer, and a second writer
        # would wait in SQLite's sleeping busy handler instead of on this lock.
        self._write_lock = threading.Lock()
        self._housekeeping_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (requests not yet sent are released)."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the dispatcher to stop after the request in flight."""
        self._stop.set()

    def acquire_single_lease(self) -> None:
        """Take the exclusive dispatcher lease, when ``options.single_lease`` names one.

        Raises:
            DeliveryError: code ``dispatcher_lease_held``: another dispatcher holds it.
        """
        name = self.options.single_lease
        if name is None:
            return
        now = utcnow()
        ttl = timedelta(seconds=self._lease_ttl())
        with self._sessions() as session:
            held = repo.acquire_lease(
                session, name=name, owner=self.owner, now=now, until=now + ttl
            )
            session.commit()
        if not held:
            raise DeliveryError(
                "another dispatcher is delivering from this SQLite database (the server's "
                "embedded dispatcher or another `opstrail worker`); run `opstrail serve "
                "--no-dispatcher` to use a separate worker",
                code="dispatcher_lease_held",
            )
        self._next_lease_renewal = time.monotonic() + self._lease_ttl() / 3

    def _lease_ttl(self) -> float:
        return max(5.0, min(self.options.lease_seconds, 30.0))

    def renew_single_lease(self) -> None:
        name = self.options.single_lease
        if name is None or time.monotonic() < self._next_lease_renewal:
            return
        now = utcnow()
        with self._sessions() as session:
            held = repo.acquire_lease(
                session,
                name=name,
                owner=self.owner,
                now=now,
                until=now + timedelta(seconds=self._lease_ttl()),
            )
            session.commit()
        if not held:
            raise DeliveryError(
                "the dispatcher lease was taken over by another dispatcher; stopping",
                code="dispatcher_lease_lost",
            )
        self._next_lease_renewal = time.monotonic() + self._lease_ttl() / 3

    def run(self) -> None:
        """Dispatch until ``request_stop``; then release what is leased and close clients.

        Errors of one cycle are logged and the loop goes on (after a pause), except losing the
        exclusive lease, which stops it.
        """
        self.acquire_single_lease()
        idle = self.options.poll_interval
        backlog = threading.Event()  # set while cycles come back full: more rows are due
        finished = threading.Event()
        helpers = [
            threading.Thread(
                target=self._follow, args=(n, backlog, finished),
                name=f"opstrail-cycle-{n}", daemon=True,
            )
            for n in range(1, self.options.cycles_in_flight)
        ]
        for helper in helpers:
            helper.start()
        try:
            while not self._stop.is_set():
                try:
                    self.renew_single_lease()
                    done = self.run_once()
                except DeliveryError as exc:
                    if exc.code == "dispatcher_lease_lost":
                        log.error("dispatcher %s: %s", self.owner, exc)
                        self._stop.set()  # the helper cycles must not send either
                        break
                    log.exception("dispatcher %s: cycle failed", self.owner)
                    done = 0
                except Exception:  # the worker-loop boundary: log and keep going
                    log.exception("dispatcher %s: cycle failed", self.owner)
                    self._stop.wait(1.0)
                    continue
                if done >= self.options.batch_size:
                    backlog.set()
                else:
                    backlog.clear()
                if done == 0:
                    self._stop.wait(idle)
                    idle = min(idle * 2, max(self.options.max_idle_interval, idle))
                    continue
                idle = self.options.poll_interval
                if done < self.options.batch_size // 8 and self.options.linger > 0:
                    self._stop.wait(self.options.linger)
        finally:
            finished.set()
            backlog.set()  # wake the helpers so that they see ``finished``
            for helper in helpers:
                helper.join()
            self.close()

    def _follow(self, cycle: int, backlog: threading.Event, finished: threading.Event) -> None:
        """A helper of ``run``: runs cycles while the leading loop reports a backlog."""
        while not (finished.is_set() or self._stop.is_set()):
            backlog.wait()
            if finished.is_set() or self._stop.is_set():
                return
            try:
                done = self.run_once(housekeeping=False, cycle=cycle)
            except Exception:  # the worker-loop boundary, as in ``run``
                log.exception("dispatcher %s: cycle failed", self.owner)
                backlog.clear()
                self._stop.wait(1.0)
                continue
            if done < self.options.batch_size:
                backlog.clear()

    def release_all(self) -> int:
        """Give back every row this dispatcher leased, and its exclusive lease; returns how
        many rows. Safe from another thread (the shutdown path)."""
        with self._sessions() as session:
            released = sum(
                repo.release_leases(session, owner=self._cycle_owner(cycle))
                for cycle in range(self.options.cycles_in_flight)
            )
            if self.options.single_lease:
                repo.drop_lease(session, name=self.options.single_lease, owner=self.owner)
            session.commit()
        return released

    def close(self) -> None:
        """Release leased rows and the exclusive lease, close exporters."""
        try:
            self.release_all()
        except Exception:  # shutdown boundary: the leases expire anyway
            log.exception("dispatcher %s: could not release leases", self.owner)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        with self._exporters_lock:
            exporters = [exporter for exporter, _ in self._exporters.values()]
            self._exporters.clear()
        for exporter in exporters:
            try:
                exporter.close()
            except Exception:  # closing a client must not stop the shutdown
                log.exception("dispatcher %s: closing an exporter failed", self.owner)

    # --- one cycle ---------------------------------------------------------------------------

    def run_once(self, *, housekeeping: bool = True, cycle: int = 0) -> int:
        """Run one cycle; returns how many rows were claimed (0: nothing due).

        Safe to call from several threads at once with different ``cycle`` numbers: each
        cycle leases under an owner of its own (``owner#cycle``), so one never takes over
        rows another still sends, nor writes outcomes for them. ``housekeeping=False`` skips
        the periodic resume check and maintenance.
        """
        if housekeeping:
            self._housekeeping()
        if self._stop.is_set():
            return 0
        owner = self._cycle_owner(cycle)
        now = utcnow()
        # A request is only started while at least half of the lease is left, so a slow
        # destination cannot make another dispatcher take over rows still being sent.
        send_by = time.monotonic() + self.options.lease_seconds / 2
        with self._write_lock, self._sessions() as session:
            rows = repo.claim_due(
                session,
                owner=owner,
                now=now,
                lease_until=now + timedelta(seconds=self.options.lease_seconds),
                limit=self.options.batch_size,
            )
            session.commit()
        if not rows:
            return 0
        try:
            items, notes = self._process(rows, send_by)
        except BaseException:
            self._release([r.id for r in rows], owner)
            raise
        self._record(items, notes, owner)
        return len(rows)

    def _cycle_owner(self, cycle: int) -> str:
        return self.owner if cycle == 0 else f"{self.owner}#{cycle}"

    def _release(self, ids: Sequence[int], owner: str) -> None:
        with self._write_lock, self._sessions() as session:
            repo.release_leases(session, owner=owner, ids=ids)
            session.commit()

    def _process(
        self, rows: Sequence[repo.ClaimedRow], send_by: float
    ) -> tuple[list[_Item], dict[str, _AppNote]]:
        items = [_Item(row, send_by) for row in rows]
        by_app: dict[str, list[_Item]] = defaultdict(list)
        for item in items:
            by_app[item.row.app_id].append(item)
        notes: dict[str, _AppNote] = {}
        now = utcnow()
        groups: dict[tuple[str, str, str], tuple[Destination, list[_Item]]] = {}
        with self._sessions() as session:
            states = repo.app_states(session, by_app)
            for app_id, app_items in by_app.items():
                note = notes[app_id] = _AppNote()
                try:
                    destination = self._resolver.resolve(session, app_id)
                except OpstrailError as exc:
                    self._fail_all(app_items, "destination_error", str(exc), delay_state="error")
                    note.failure = ("error", exc.code, _cap(str(exc)))
                    continue
                if destination is None:
                    for item in app_items:
                        self._judge(item, _Verdict.UNROUTED, "not_configured",
                                    "tracing is not configured or disabled for this app")
                    continue
                self._reprobe(destination)
                path = self._paths.get(destination.key)
                if path is not None and path != destination.path:
                    destination = replace(destination, path=path)
                note.destination = destination
                note.fingerprint = credentials_fingerprint(destination)
                state = states.get(app_id)
                if state is not None and state.paused:
                    if state.credentials_fingerprint != note.fingerprint:
                        note.unpause = True
                    elif state.paused_until is not None and state.paused_until > now:
                        for item in app_items:
                            item.delay = (state.paused_until - now).total_seconds()
                            self._judge(item, _Verdict.DEFER, state.last_error_code or "paused",
                                        state.last_error_message or "destination paused")
                        continue
                # Apps sharing a project may still differ in keys or path: one group each.
                group_key = (destination.key, destination.path.value, note.fingerprint)
                group = groups.setdefault(group_key, (destination, []))
                group[1].extend(app_items)
        work = [(dest, its) for dest, its in groups.values()]
        if len(work) <= 1 or self.options.send_threads <= 1:
            for destination, dest_items in work:
                self._deliver(destination, dest_items)
        else:
            with self._exporters_lock:  # cycles in flight share one pool
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=self.options.send_threads, thread_name_prefix="opstrail-send"
                    )
                pool = self._pool
            futures = [pool.submit(self._deliver, d, its) for d, its in work]
            for future in futures:
                future.result()
        for item in items:
            if item.verdict is None:  # defensive: nothing may stay leased by accident
                self._judge(item, _Verdict.RELEASE, "not_sent", "not sent in this cycle")
        self._note_outcomes(items, notes)
        return items, notes

    def _fail_all(self, items: Sequence[_Item], code: str, message: str, *, delay_state: str) -> None:
        for item in items:
            item.delay = self.options.schedule.delay(item.row.attempts + 1, self._rng.random())
            item.state = delay_state
            self._judge(item, _Verdict.RETRY, code, message)

    @staticmethod
    def _judge(item: _Item, verdict: _Verdict, code: str | None, message: str | None) -> None:
        item.verdict = verdict
        item.code = code
        item.message = _cap(message) if message else message

    # --- sending -----------------------------------------------------------------------------

    def _deliver(self, destination: Destination, items: list[_Item]) -> None:
        """Build and send every item of one destination; sets each item's verdict."""
        breaker = self._breakers.setdefault(destination.key, CircuitBreaker())
        if self._held_back(breaker, items):
            return
        traces: list[_Item] = []
        scores: list[_Item] = []
        for item in items:
            row = item.row
            if row.wire is not None and row.wire_format is not None:
                # Sent as stored if the exporter takes this format; else built (``_ready``).
                item.encoded = EncodedTrace(
                    row.trace_id, row.wire_format, row.wire, row.wire_observations
                )
                traces.append(item)
                continue
            self._build(item)
            if item.verdict is not None:
                continue
            (scores if item.feedback is not None else traces).append(item)
        # The breaker is checked before every request: once a destination starts failing
        # (or answers 429) the rest of the batch waits instead of hammering it.
        for chunk in self._chunks(traces, destination.path):
            if not self._released(chunk) and not self._held_back(breaker, chunk):
                self._send(destination, chunk, path_switched=False)
        for item in scores:
            if not self._released([item]) and not self._held_back(breaker, [item]):
                self._send_score(destination, item)

    def _held_back(self, breaker: CircuitBreaker, items: Sequence[_Item]) -> bool:
        now = time.monotonic()
        if breaker.allows(now):
            return False
        wait = max(breaker.open_until - now, 0.0)
        for item in items:
            item.delay = wait
            self._judge(
                item, _Verdict.DEFER, "circuit_open",
                "destination failing or rate-limited; waiting before the next try",
            )
        return True

    def _released(self, items: Sequence[_Item]) -> bool:
        """Give ``items`` back unsent when stopping, or when their lease is half gone (a
        slow destination earlier in the cycle); ``True`` if so."""
        if self._stop.is_set():
            for item in items:
                self._judge(item, _Verdict.RELEASE, "shutdown", "released at shutdown, not sent")
            return True
        if time.monotonic() > items[0].send_by:
            for item in items:
                self._judge(item, _Verdict.RELEASE, "lease_running_out",
                            "not sent: the cycle's lease was half gone; due again at once")
            return True
        return False

    def _build(self, item: _Item) -> None:
        row = item.row
        payload = row.payload
        if payload is None and row.wire is not None:  # the claim skipped it: read it now
            try:
                with self._sessions() as session:
                    payload = repo.payload_of(session, row.id)
            except Exception as exc:  # the database, not the row: try again later
                log.exception("dispatcher %s: reading outbox row %s failed", self.owner, row.id)
                self._fail_all([item], "database_error", f"{type(exc).__name__}: {exc}",
                               delay_state="error")
                return
        if payload is None:
            self._judge(item, _Verdict.DEAD, "payload_pruned", "the stored record was pruned")
            return
        try:
            record = codec.decode(row.kind, payload)
            if isinstance(record, FeedbackInfo):
                item.feedback = record
            else:
                item.trace = self._build_trace(record)
        except OpstrailError as exc:
            self._judge(item, _Verdict.DEAD, exc.code, str(exc))
        except Exception as exc:  # a builder bug on one row must not block the others
            log.exception("dispatcher %s: building outbox row %s failed", self.owner, row.id)
            self._judge(item, _Verdict.DEAD, "build_failed", f"{type(exc).__name__}: {exc}")

    def _chunks(self, items: Sequence[_Item], path: IngestionPath) -> list[list[_Item]]:
        # Estimated wire bytes from the stored JSON size, so that the exporter rarely has to
        # split (and re-encode) a request that went over the Langfuse limit.
        factor = WIRE_BYTES_PER_PAYLOAD_BYTE[path]
        chunks: list[list[_Item]] = []
        current: list[_Item] = []
        size = 0
        for item in items:
            if item.encoded is not None:
                weight = len(item.encoded.body)
            else:
                weight = max(int(item.row.payload_bytes * factor), 1)
            if current and (
                len(current) >= self.options.batch_size
                or size + weight > self.options.max_batch_bytes
            ):
                chunks.append(current)
                current, size = [], 0
            current.append(item)
            size += weight
        if current:
            chunks.append(current)
        return chunks

    def _exporter(self, destination: Destination) -> _Exporters:
        """The destination's exporter, and the same again if it takes encoded traces."""
        key = (destination.key, destination.path)
        with self._exporters_lock:
            pair = self._exporters.get(key)
            if pair is None:
                exporter = self._exporter_for(destination)
                encoding = exporter if isinstance(exporter, EncodingExporter) else None
                pair = self._exporters[key] = (exporter, encoding)
            return pair

    def _export(
        self, destination: Destination, exporters: _Exporters, items: list[_Item]
    ) -> ExportResult:
        exporter, encoding = exporters
        try:
            if encoding is not None:
                result = encoding.export_encoded(
                    [item.encoded for item in items if item.encoded is not None], destination
                )
            else:
                traces = [item.trace for item in items if item.trace is not None]
                result = exporter.export(traces, destination)
        except Exception as exc:  # exporters should return; a raising one must not kill us
            log.exception("dispatcher %s: exporter raised", self.owner)
            result = ExportResult(Outcome.RETRY, message=f"exporter error: {type(exc).__name__}: {exc}")
        if self._metrics is not None:
            self._metrics.requests.labels(destination.key, result.outcome.value).inc()
        return result

    def _ready(self, encoding: EncodingExporter | None, items: list[_Item]) -> list[_Item]:
        """The items the exporter can take: those it cannot take as they are are built from
        their trace info (a stored body of another format, a legacy destination, a path
        switch) and, for an encoding exporter, encoded; an item that fails either drops out
        with its verdict, so one bad trace never holds back the others of its request."""
        wire_format = encoding.wire_format if encoding is not None else None
        ready: list[_Item] = []
        for item in items:
            if item.trace is None and (
                item.encoded is None or item.encoded.wire_format != wire_format
            ):
                item.encoded = None  # a body this exporter cannot take was never sent
                self._build(item)
                if item.verdict is not None:
                    continue
            if encoding is not None and (
                item.encoded is None or item.encoded.wire_format != wire_format
            ):
                assert item.trace is not None  # built above
                try:
                    item.encoded = encoding.encode(item.trace)
                except Exception as exc:  # an encoder bug on one trace
                    log.exception("dispatcher %s: encoding outbox row %s failed", self.owner,
                                  item.row.id)
                    self._judge(item, _Verdict.DEAD, "encode_failed",
                                f"{type(exc).__name__}: {exc}")
                    continue
            ready.append(item)
        return ready

    def _send(self, destination: Destination, items: list[_Item], *, path_switched: bool) -> None:
        # Every request passes here, the resends of a split, a shrink or a path switch too.
        if self._released(items):
            return
        try:
            exporters = self._exporter(destination)
        except Exception as exc:  # one destination's exporter must not cost the whole cycle
            log.exception("dispatcher %s: no exporter for %s", self.owner, destination.key)
            self._fail_all(items, "exporter_error", f"{type(exc).__name__}: {exc}",
                           delay_state="error")
            return
        items = self._ready(exporters[1], items)
        if not items:
            return
        result = self._export(destination, exporters, items)
        self._feed_breaker(destination, result)
        request = result.outcome
        per_trace = bool(result.traces)
        if not per_trace and len(items) > 1 and request in (Outcome.REJECTED, Outcome.TOO_LARGE):
            middle = len(items) // 2
            self._send(destination, items[:middle], path_switched=path_switched)
            self._send(destination, items[middle:], path_switched=path_switched)
            return
        wrong_path: list[_Item] = []
        for item in items:
            trace_id = item.trace_id
            outcome = result.outcome_of(trace_id)
            detail = result.traces.get(trace_id)
            message = (detail.message if detail and detail.message else result.message) or outcome.value
            action = decide(
                outcome,
                attempt=item.row.attempts + 1,
                batch_size=1,
                jitter=self._rng.random(),
                schedule=self.options.schedule,
                retry_after=result.retry_after,
                status_code=result.status_code,
                path_switched=path_switched,
            )
            if action.kind is ActionKind.SWITCH_PATH:
                wrong_path.append(item)
            elif action.kind is ActionKind.SPLIT:
                self._shrink_and_resend(
                    destination, item, message, path_switched,
                    over_own_cap=detail is not None and not detail.sent,
                )
            else:
                self._apply(item, action, message, destination)
        if wrong_path:
            other = IngestionPath.LEGACY if destination.path is IngestionPath.OTLP else IngestionPath.OTLP
            log.warning(
                "dispatcher %s: %s refused the %s path; switching to %s",
                self.owner, destination.key, destination.path.value, other.value,
            )
            self._paths[destination.key] = other
            self._send(replace(destination, path=other), wrong_path, path_switched=True)

    def _reprobe(self, destination: Destination) -> None:
        """Probe the destination's server again when its last probe is over a day old, and
        remember the path it now wants (for this process; the stored config is unchanged)."""
        if self._probe_path is None or destination.path_fixed:
            return
        if destination.probed_at is not None and (
            utcnow() - destination.probed_at
        ).total_seconds() < self.options.reprobe_seconds:
            return
        now = time.monotonic()
        if now < self._next_probe.get(destination.key, 0.0):
            return
        try:
            path = self._probe_path(destination)
        except Exception:  # a probe is advice: on any failure keep the path and retry later
            log.warning("dispatcher %s: probing %s failed; keeping path %s", self.owner,
                        destination.key, destination.path.value, exc_info=True)
            self._next_probe[destination.key] = now + self.options.reprobe_retry_seconds
            return
        self._next_probe[destination.key] = now + self.options.reprobe_seconds
        if path != self._paths.get(destination.key, destination.path):
            log.info("dispatcher %s: %s now takes the %s path", self.owner, destination.key,
                     path.value)
        self._paths[destination.key] = path

    def _shrink_and_resend(
        self,
        destination: Destination,
        item: _Item,
        message: str,
        path_switched: bool,
        *,
        over_own_cap: bool = False,
    ) -> None:
        """Cut a trace that was too large and send it again. ``over_own_cap``: the exporter
        refused a stored body over its request cap without sending it; the trace is then
        built and re-encoded by the exporter, which fits it exactly to that cap, instead of
        being halved for an unknown server limit."""
        from opstrail.exporters.limits import estimate_size, shrink_trace

        if item.trace is None:  # sent as stored: build it to cut its fields
            self._build(item)
            if item.trace is None:
                return
            if over_own_cap and item.shrink_rounds < MAX_SHRINK_ROUNDS:
                item.encoded = None
                item.shrink_rounds += 1
                self._send(destination, [item], path_switched=path_switched)
                return
        if item.shrink_rounds >= MAX_SHRINK_ROUNDS:
            self._judge(item, _Verdict.DEAD, "too_large", f"still too large after shrinking: {message}")
            return
        # The server's limit is unknown: halve the trace's big fields until it passes.
        smaller = shrink_trace(item.trace, max(estimate_size(item.trace) // 2, 1024))
        if smaller is item.trace:
            self._judge(item, _Verdict.DEAD, "too_large", f"too large and nothing to cut: {message}")
            return
        item.trace = smaller
        item.encoded = None
        item.shrink_rounds += 1
        self._send(destination, [item], path_switched=path_switched)

    def _send_score(self, destination: Destination, item: _Item) -> None:
        feedback = item.feedback
        assert feedback is not None
        exporter, _ = self._exporter(destination)
        try:
            score = self._build_score(feedback)
            if score is None:
                result = exporter.delete_score(make_score_id(feedback.message_id), destination)
            else:
                result = exporter.export_score(score, destination)
        except OpstrailError as exc:
            self._judge(item, _Verdict.DEAD, exc.code, str(exc))
            return
        except Exception as exc:  # exporter or builder bug on one score: keep going
            log.exception("dispatcher %s: score of row %s failed", self.owner, item.row.id)
            result = ExportResult(Outcome.RETRY, message=f"exporter error: {type(exc).__name__}: {exc}")
        self._feed_breaker(destination, result)
        if self._metrics is not None:
            self._metrics.requests.labels(destination.key, result.outcome.value).inc()
        action = decide(
            result.outcome,
            attempt=item.row.attempts + 1,
            batch_size=1,
            jitter=self._rng.random(),
            schedule=self.options.schedule,
            retry_after=result.retry_after,
            status_code=result.status_code,
            path_switched=True,  # scores use one endpoint on every path
        )
        if action.kind is ActionKind.SPLIT:
            action = Action(ActionKind.DEAD, "too_large")
        self._apply(item, action, result.message or result.outcome.value, destination)

    def _feed_breaker(self, destination: Destination, result: ExportResult) -> None:
        breaker = self._breakers.setdefault(destination.key, CircuitBreaker())
        now = time.monotonic()
        if result.outcome is Outcome.RATE_LIMITED:
            wait = result.retry_after if result.retry_after is not None else 1.0
            breaker.hold_until(now, min(wait, MAX_RETRY_AFTER_SECONDS))
        elif result.outcome is Outcome.RETRY:
            breaker.record_failure(now)
        elif result.status_code is not None and 200 <= result.status_code < 300:
            breaker.record_success()

    def _apply(self, item: _Item, action: Action, message: str, destination: Destination) -> None:
        kind = action.kind
        if kind is ActionKind.DELIVERED:
            self._judge(item, _Verdict.DELIVERED, None, None)
        elif kind is ActionKind.RETRY:
            item.delay = action.delay or 0.0
            item.state = action.state
            self._judge(item, _Verdict.RETRY, action.code, message)
        elif kind is ActionKind.PAUSE:
            item.state = action.state
            self._judge(item, _Verdict.PAUSE, action.code, message)
        else:  # DEAD, or a lone trace that still asks for a bisect or a switch
            self._judge(item, _Verdict.DEAD, action.code, message)

    # --- recording ---------------------------------------------------------------------------

    @staticmethod
    def _note_outcomes(items: Sequence[_Item], notes: dict[str, _AppNote]) -> None:
        for item in items:
            note = notes.get(item.row.app_id)
            if note is None:
                continue
            if item.verdict is _Verdict.DELIVERED:
                note.success = True
            elif item.verdict is _Verdict.PAUSE:
                note.pause = (item.state or "error", item.code or "paused", item.message or "")
            elif item.verdict is _Verdict.RETRY and item.state:
                note.failure = (item.state, item.code or "error", item.message or "")
            elif item.verdict is _Verdict.DEAD:
                note.failure = ("error", item.code or "dead", item.message or "")

    def _record(self, items: Sequence[_Item], notes: dict[str, _AppNote], owner: str) -> None:
        now = utcnow()
        updates: list[repo.RowUpdate] = []
        acks: dict[str, list[int]] = defaultdict(list)
        release: list[int] = []
        settled_wire: list[int] = []  # stored bodies no longer needed
        metrics = self._metrics
        for item in items:
            row = item.row
            note = notes.get(row.app_id)
            destination = note.destination if note else None
            key = destination.key if destination else None
            verdict = item.verdict
            if verdict is _Verdict.RELEASE:
                release.append(row.id)
                continue
            if row.wire is not None and verdict in _SETTLED:
                settled_wire.append(row.id)
            if verdict is _Verdict.DELIVERED:
                assert key is not None
                if item.trace is not None:
                    count: int | None = len(item.trace.observations)
                elif item.encoded is not None:
                    count = item.encoded.observations
                else:
                    count = None
                updates.append(repo.RowUpdate(
                    id=row.id, state=OutboxState.DELIVERED.value, next_attempt_at=now,
                    attempts=row.attempts + 1, destination_key=key, delivered_at=now,
                    observation_count=count,
                ))
                acks[key].append(row.id)
                if metrics is not None:
                    metrics.delivered.labels(key).inc()
                    metrics.observations.labels(key).inc(count or 0)
                    metrics.latency.observe(max((now - row.queued_at).total_seconds(), 0.0))
            elif verdict is _Verdict.RETRY:
                updates.append(repo.RowUpdate(
                    id=row.id, state=OutboxState.RETRYING.value,
                    next_attempt_at=now + timedelta(seconds=item.delay),
                    attempts=row.attempts + 1, code=item.code, message=item.message,
                    destination_key=key,
                ))
                if metrics is not None:
                    metrics.retried.labels(key or "", item.code or "").inc()
            elif verdict is _Verdict.PAUSE:
                updates.append(repo.RowUpdate(
                    id=row.id, state=OutboxState.RETRYING.value,
                    next_attempt_at=now + timedelta(seconds=self.options.pause_probe_seconds),
                    attempts=row.attempts + 1, code=item.code, message=item.message,
                    destination_key=key,
                ))
                if metrics is not None:
                    metrics.retried.labels(key or "", item.code or "").inc()
            elif verdict is _Verdict.DEFER:
                updates.append(repo.RowUpdate(
                    id=row.id,
                    state=(OutboxState.RETRYING if row.attempts else OutboxState.PENDING).value,
                    next_attempt_at=now + timedelta(seconds=item.delay),
                    attempts=row.attempts, code=item.code, message=item.message,
                ))
            elif verdict is _Verdict.DEAD:
                updates.append(repo.RowUpdate(
                    id=row.id, state=OutboxState.DEAD.value, next_attempt_at=now,
                    attempts=row.attempts + (0 if item.trace is None and item.feedback is None
                                             and item.encoded is None else 1),
                    code=item.code, message=item.message, destination_key=key,
                ))
                if metrics is not None:
                    metrics.dead.labels(item.code or "").inc()
            elif verdict is _Verdict.UNROUTED:
                updates.append(repo.RowUpdate(
                    id=row.id, state=OutboxState.UNROUTED.value, next_attempt_at=now,
                    attempts=row.attempts, code=item.code, message=item.message,
                ))
        with self._write_lock, self._sessions() as session:
            repo.apply_updates(session, owner=owner, updates=updates, now=now)
            if release:
                repo.release_leases(session, owner=owner, ids=release)
            repo.drop_wire(session, ids=settled_wire, settled_only=True)
            for key, ids in acks.items():
                repo.record_acks(session, destination_key=key, outbox_ids=ids, now=now)
            for app_id, note in notes.items():
                self._record_app(session, app_id, note, now)
            session.commit()

    def _record_app(self, session: Session, app_id: str, note: _AppNote, now: datetime) -> None:
        if note.destination is None and note.failure is None:
            return
        state = repo.app_state(session, app_id)
        destination = note.destination
        if destination is not None:
            state.destination_key = destination.key
            state.path = destination.path.value
            state.server_version = destination.server_version
        if note.unpause and note.pause is None:
            state.paused = False
            state.paused_until = None
        if note.pause is not None:
            dest_state, code, message = note.pause
            until = now + timedelta(seconds=self.options.pause_probe_seconds)
            state.paused = True
            state.paused_until = until
            state.credentials_fingerprint = note.fingerprint
            state.state = dest_state
            state.last_error_code = code
            state.last_error_message = message
            repo.defer_app_rows(
                session, app_id=app_id, until=until, code=code, message=message, now=now
            )
        elif note.failure is not None:
            dest_state, code, message = note.failure
            state.last_error_code = code
            state.last_error_message = message
            if not note.success:
                state.state = dest_state
        if note.success and note.pause is None:
            state.state = "ok"
            state.paused = False
            state.paused_until = None
            state.last_success_at = now
        state.updated_at = now

    # --- housekeeping --------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        if not self._housekeeping_lock.acquire(blocking=False):
            return  # another cycle is at it
        try:
            self._keep_house()
        finally:
            self._housekeeping_lock.release()

    def _keep_house(self) -> None:
        mono = time.monotonic()
        if mono >= self._next_resume_check:
            self._next_resume_check = mono + self.options.resume_check_seconds
            self.check_paused()
        if mono >= self._next_maintenance:
            self._next_maintenance = mono + self.options.maintenance_seconds
            self.maintain()

    def check_paused(self) -> int:
        """Resume paused apps whose credentials changed (or that lost their config);
        returns how many were resumed."""
        resumed = 0
        now = utcnow()
        with self._write_lock, self._sessions() as session:
            for state in repo.paused_apps(session):
                try:
                    destination = self._resolver.resolve(session, state.app_id)
                except OpstrailError:
                    continue
                if destination is not None and (
                    credentials_fingerprint(destination) == state.credentials_fingerprint
                ):
                    continue
                state.paused = False
                state.paused_until = None
                state.updated_at = now
                repo.wake_app_rows(session, app_id=state.app_id, now=now)
                resumed += 1
            session.commit()
        if resumed:
            log.info("dispatcher %s: resumed %d paused app(s) after a config change", self.owner, resumed)
        return resumed

    def maintain(self) -> tuple[int, int]:
        """Apply the age limit (dead-letter) and the payload retention; returns the counts."""
        now = utcnow()
        with self._write_lock, self._sessions() as session:
            expired = repo.expire_old_rows(session, now=now, max_age=self.options.max_row_age)
            pruned = repo.prune_payloads(session, now=now, retention=self.options.retention)
            repo.prune_wire(session)
            session.commit()
        if expired:
            log.warning("dispatcher %s: dead-lettered %d row(s) past the age limit", self.owner, expired)
            if self._metrics is not None:
                self._metrics.dead.labels("expired").inc(expired)
        return expired, pruned

"""Delivery benchmarks: export throughput (ours vs the Langfuse SDK vs one POST per
observation), end-to-end latency at 100 traces/s, draining a 100,000-trace backlog (with peak
RSS), and the request-path cost of ``record_trace``.

Every measurement runs in a fresh Python process (``python bench/bench_delivery.py _child ...``)
so that one does not warm or pollute another; the collector (``opstrail collector``) always
runs in a process of its own, so it never shares the GIL with the process measured.

Usage::

    .venv/bin/python bench/bench_delivery.py all [--runs 3] [--traces 1000] [--backlog 100000]
    .venv/bin/python bench/bench_delivery.py throughput|sdk|dify|latency|backlog|record

Prints a Markdown section (paste it into docs/benchmarks.md, "Delivery") and writes the raw
figures to ``bench/results/delivery.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_KEY, SECRET_KEY, PROJECT = "pk-lf-bench", "sk-lf-bench", "proj-bench"
NODES = 20  # a 20-node workflow run: 21 observations per trace


# --- shared plumbing -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def collector(
    *, accept_only: bool, version: str = "3.30.0", data_dir: Path | None = None
) -> Iterator[str]:
    """An ``opstrail collector`` process on a free loopback port; yields its URL."""
    import httpx

    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    args = [
        sys.executable, "-m", "opstrail", "collector", "--port", str(port),
        "--langfuse-version", version, "--keys", f"{PUBLIC_KEY}:{SECRET_KEY}:{PROJECT}",
        "--data-dir", str(data_dir or work), "--otlp-max-mb", "16",
    ]
    if accept_only:
        args.append("--accept-only")
    env = {**os.environ, "OPSTRAIL_DATA_DIR": str(work / "home")}
    # Keep the collector's output: a failed run then shows the collector's traceback.
    log_path = work / "collector.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("collector did not start")
        yield url
    except Exception as exc:
        raise RuntimeError(f"{exc!r}; collector log:\n{log_path.read_text()[-3000:]}") from exc
    finally:
        process.terminate()
        process.wait(10)


def _database(tmp: Path, **settings_overrides: Any) -> tuple[Any, Any, Any]:
    from opstrail.settings import Settings
    from opstrail.storage.engine import make_engine, make_session_factory
    from opstrail.storage.schema import ensure_schema

    settings = Settings(data_dir=tmp / "data", loopback_only_hosts=True, **settings_overrides)
    engine = make_engine(settings)
    ensure_schema(engine)
    return settings, engine, make_session_factory(engine)


def _configured_app(settings: Any, sessions: Any, url: str, path: str | None = None) -> str:
    from opstrail.config.crypto import Keyring
    from opstrail.services import tracing_settings
    from opstrail.storage.tables.apps import App
    from opstrail.storage.tenancy import ensure_default_tenant

    with sessions() as session:
        tenant_id, _ = ensure_default_tenant(session)
        app_id = str(uuid.uuid4())
        session.add(App(id=app_id, tenant_id=tenant_id, name="bench", mode="workflow", dsl=""))
        session.commit()
        values: dict[str, object] = {"public_key": PUBLIC_KEY, "secret_key": SECRET_KEY, "host": url}
        if path:
            values["ingestion_path"] = path
        tracing_settings.create_config(
            session, settings, Keyring.from_settings(settings), tenant_id=None, app_id=app_id,
            provider="langfuse", values=values,
        )
        tracing_settings.set_switch(
            session, tenant_id=None, app_id=app_id, enabled=True, provider="langfuse"
        )
    return app_id


def _workflows(app_id: str, count: int) -> list[Any]:
    from opstrail.tracing import samples

    context = replace(samples.run_context(), app_id=app_id)
    base = samples.workflow_run(NODES, context=context)
    return [replace(base, workflow_run_id=str(uuid.uuid4())) for _ in range(count)]


def _enqueue(sessions: Any, settings: Any, infos: list[Any], chunk: int = 5000) -> None:
    """Record ``infos`` as runs do (``record_trace``: policy, and with ``encode_at_record``
    the trace built and encoded), outside any timer."""
    from opstrail.services.trace_recording import record_trace

    for start in range(0, len(infos), chunk):
        with sessions() as session:
            for info in infos[start : start + chunk]:
                record_trace(session, settings, info)
            session.commit()


def _child(kind: str, *args: str) -> dict[str, Any]:
    """Run ``kind`` in a fresh process and return its JSON answer."""
    out = subprocess.run(
        [sys.executable, __file__, "_child", kind, *args],
        capture_output=True, text=True, cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} {args} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu() -> float:
    return time.process_time()


def _drain(dispatcher: Any, engine: Any) -> tuple[float, float]:
    """Run ``dispatcher.run`` until no row is due; returns its wall and CPU seconds (the
    process's CPU: every cycle thread's, and this poll's, which is well under 1 %)."""
    import threading

    worker = threading.Thread(target=dispatcher.run)
    with engine.connect() as poll:
        started, cpu = time.perf_counter(), _cpu()
        worker.start()
        while poll.exec_driver_sql(
            "SELECT 1 FROM outbox WHERE state IN ('pending', 'retrying') LIMIT 1"
        ).first() is not None:
            poll.rollback()
            time.sleep(0.005)
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
    dispatcher.request_stop()
    worker.join()
    return wall, cpu


# --- children: one measurement each -----------------------------------------------------------


def child_ours(
    path: str, traces: str, mode: str = "stored", cycles: str = "default"
) -> dict[str, Any]:
    """Drain ``traces`` pending 20-node workflow traces with one dispatcher running its worker
    loop (``Dispatcher.run``, as ``opstrail worker`` does) in this process.

    ``mode``: ``stored`` records with ``encode_at_record`` (the default: OTLP rows carry their
    encoded spans), ``built`` without (every trace decoded, built and encoded at send time).
    ``cycles``: cycles in flight (``default``: the dispatcher's default).
    """
    from opstrail.services.bootstrap import build_dispatcher

    count = int(traces)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    settings, engine, sessions = _database(tmp, encode_at_record=(mode == "stored"))
    with collector(accept_only=True) as url:
        app_id = _configured_app(settings, sessions, url, path)
        _enqueue(sessions, settings, _workflows(app_id, count))
        dispatcher = build_dispatcher(settings, sessions)
        if cycles != "default":
            dispatcher.options = replace(dispatcher.options, cycles_in_flight=int(cycles))
        wall, cpu = _drain(dispatcher, engine)
        from sqlalchemy import func, select

        from opstrail.storage.tables.outbox import OutboxRow

        with sessions() as session:
            delivered = session.scalar(
                select(func.coalesce(func.sum(OutboxRow.observation_count), 0)).where(
                    OutboxRow.state == "delivered"
                )
            )
    engine.dispose()
    return {"observations": int(delivered or 0), "wall": wall, "cpu": cpu}


def child_sdk(traces: str) -> dict[str, Any]:
    """The official Langfuse SDK (v5) exporting the same spans to the same collector."""
    from langfuse import Langfuse

    from opstrail.tracing.build import build_trace

    count = int(traces)
    built = [build_trace(info) for info in _workflows(str(uuid.uuid4()), count)]
    with collector(accept_only=True) as url:
        client = Langfuse(
            public_key=PUBLIC_KEY, secret_key=SECRET_KEY, host=url, flush_at=512,
            flush_interval=1.0,
        )
        spans = 0
        started, cpu = time.perf_counter(), _cpu()
        for trace in built:
            root_obs = trace.observations[0]
            root = client.start_observation(
                name=root_obs.name, as_type="chain", input=root_obs.input,
                output=root_obs.output, metadata=dict(root_obs.metadata),
            )
            for obs in trace.observations[1:]:
                child = root.start_observation(
                    name=obs.name, as_type="span", input=obs.input, output=obs.output,
                    metadata=dict(obs.metadata), level=obs.level.value,
                )
                child.end()
                spans += 1
            root.end()
            spans += 1
        client.flush()
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
        client.shutdown()
    return {"observations": spans, "wall": wall, "cpu": cpu}


def child_dify(traces: str) -> dict[str, Any]:
    """Dify's style: one synchronous POST (a batch of one event) per observation."""
    import httpx

    from opstrail.exporters.legacy.encode import encode_batch
    from opstrail.tracing.build import build_trace

    count = int(traces)
    built = [build_trace(info) for info in _workflows(str(uuid.uuid4()), count)]
    with collector(accept_only=True) as url, httpx.Client(
        auth=(PUBLIC_KEY, SECRET_KEY), timeout=10
    ) as http:
        events = 0
        started, cpu = time.perf_counter(), _cpu()
        for trace in built:
            for event in encode_batch([trace])["batch"]:
                response = http.post(url + "/api/public/ingestion", json={"batch": [event]})
                response.raise_for_status()
                events += 1
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
    observations = sum(len(t.observations) for t in built)
    return {"observations": observations, "events": events, "wall": wall, "cpu": cpu}


def child_latency(rate: str, seconds: str) -> dict[str, Any]:
    """Record chat messages at ``rate``/s for ``seconds`` with the embedded dispatcher and the
    encoder thread running on one session factory (as in ``opstrail serve``); latency =
    commit -> first receipt at the collector."""
    from opstrail.delivery.worker import DispatcherThread
    from opstrail.services.bootstrap import build_dispatcher
    from opstrail.services.trace_recording import build_options, record_trace
    from opstrail.services.wire_encoding import WireEncoder, attach
    from opstrail.tracing import samples
    from opstrail.tracing.policy import root_trace_id

    per_second, duration = float(rate), float(seconds)
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    store = tmp / "collector"
    store.mkdir()
    settings, engine, sessions = _database(tmp)
    encoder = WireEncoder(sessions, build_options(settings))
    attach(sessions, encoder)
    encoder.start()
    committed: dict[str, datetime] = {}
    with collector(accept_only=False, version="4.16.0", data_dir=store) as url:
        app_id = _configured_app(settings, sessions, url)
        context = replace(samples.run_context(), app_id=app_id)
        runner = DispatcherThread(build_dispatcher(settings, sessions))
        runner.start()
        total = int(per_second * duration)
        started = time.perf_counter()
        for n in range(total):
            due = started + n / per_second
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            info = samples.chat_message(message_id=str(uuid.uuid4()), context=context)
            with sessions() as session:
                record_trace(session, settings, info)
                session.commit()
            committed[root_trace_id(info)] = datetime.now(UTC)
        deadline = time.perf_counter() + 60
        received: dict[str, datetime] = {}
        while time.perf_counter() < deadline:
            received = _received(store)
            if len(received) >= total:
                break
            time.sleep(0.5)
        runner.stop()
    encoder.stop()
    engine.dispose()
    latencies = sorted(
        (received[t] - c).total_seconds() * 1000 for t, c in committed.items() if t in received
    )
    return {
        "sent": len(committed),
        "received": len(latencies),
        "p50_ms": _percentile(latencies, 50),
        "p90_ms": _percentile(latencies, 90),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "encoded_after_commit": encoder.stats.encoded,
    }


def _received(store: Path) -> dict[str, datetime]:
    files = list(store.glob("*.db")) + list(store.glob("*.sqlite*"))
    if not files:
        return {}
    with sqlite3.connect(files[0], timeout=5) as conn:
        rows = conn.execute(
            "SELECT trace_id, MIN(received_at) FROM observation_copies GROUP BY trace_id"
        ).fetchall()
    return {
        t: datetime.fromisoformat(r.replace("Z", "+00:00")) for t, r in rows if t is not None
    }


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return round(values[k], 1)


def child_backlog(count: str) -> dict[str, Any]:
    """Fill the outbox with ``count`` pending chat messages, drain them with one
    `opstrail worker --drain` process, sampling its RSS."""
    from opstrail.tracing import samples

    total = int(count)
    tmp = Path(tempfile.mkdtemp(prefix="bench-backlog-"))
    settings, engine, sessions = _database(tmp)
    with collector(accept_only=True, version="4.16.0") as url:
        app_id = _configured_app(settings, sessions, url)
        context = replace(samples.run_context(), app_id=app_id)
        base = samples.chat_message(context=context)
        fill_started = time.perf_counter()
        for start in range(0, total, 10_000):
            _enqueue(
                sessions,
                settings,
                [replace(base, message_id=str(uuid.uuid4())) for _ in range(min(10_000, total - start))],
                chunk=10_000,
            )
        fill = time.perf_counter() - fill_started
        engine.dispose()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPSTRAIL_")},
            "OPSTRAIL_DATA_DIR": str(settings.data_dir),
            "OPSTRAIL_LOOPBACK_ONLY_HOSTS": "true",
        }
        started = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "opstrail", "worker", "--drain", "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        samples_mb: list[tuple[float, float]] = []
        while worker.poll() is None:
            rss = _rss_mb(worker.pid)
            if rss is not None:
                samples_mb.append((time.perf_counter() - started, rss))
            time.sleep(0.25)
        wall = time.perf_counter() - started
    with sqlite3.connect(settings.data_dir / "opstrail.db") as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        observations = conn.execute(
            "SELECT COALESCE(SUM(observation_count), 0) FROM outbox WHERE state='delivered'"
        ).fetchone()[0]
    rss_values = [r for _, r in samples_mb]
    tenths = [
        round(samples_mb[int(i / 10 * (len(samples_mb) - 1))][1]) for i in range(11)
    ] if samples_mb else []
    return {
        "traces": total,
        "fill_seconds": fill,
        "states": states,
        "observations": observations,
        "wall": wall,
        "peak_rss_mb": max(rss_values) if rss_values else None,
        "rss_by_tenth_mb": tenths,
        "exit_code": worker.returncode,
    }


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child_record(iterations: str) -> dict[str, Any]:
    """The request-path cost of record_trace on SQLite (tracing enabled: the policy lookup
    included), alone and with the INSERT flushed; the caller's commit is not counted."""
    from opstrail.services.trace_recording import record_trace
    from opstrail.tracing import samples

    count = int(iterations)
    tmp = Path(tempfile.mkdtemp(prefix="bench-record-"))
    settings, engine, sessions = _database(tmp)
    with collector(accept_only=True) as url:
        app_id = _configured_app(settings, sessions, url)
    context = replace(samples.run_context(), app_id=app_id)
    infos = {
        "chat message (5 obs)": [
            samples.chat_message(message_id=str(uuid.uuid4()), context=context)
            for _ in range(count)
        ],
        "workflow, 20 nodes": [
            replace(i, workflow_run_id=str(uuid.uuid4())) for i in _workflows(app_id, count)
        ],
    }
    from opstrail.config.tracing_config import recording_settings

    lookup: list[float] = []
    with sessions() as session:
        for _ in range(count):
            t0 = time.perf_counter()
            recording_settings(session, app_id)
            lookup.append((time.perf_counter() - t0) * 1e6)
            session.rollback()
    lookup.sort()
    result: dict[str, Any] = {
        "recording_settings lookup (config layer)": {
            "p50_us": _percentile(lookup, 50), "p99_us": _percentile(lookup, 99),
        }
    }
    # Each record is measured in three ways, taking turns in a rotating order so that all see
    # the same machine state (this host is shared and noisy):
    # - encoded after commit: as in the server, whose session factory has a WireEncoder; the
    #   request records the trace info, and the commit hands the trace to the encoder thread
    #   (flushed outside the timer, so no measurement runs beside background encoding);
    # - encoded in the transaction: a session factory without an encoder (CLI, tests);
    # - encode_at_record off: the dispatcher builds every trace at send time.
    from opstrail.services.trace_recording import build_options
    from opstrail.services.wire_encoding import WireEncoder, attach
    from opstrail.storage.engine import make_session_factory

    served = make_session_factory(engine)
    encoder = WireEncoder(served, build_options(settings))
    attach(served, encoder)
    encoder.start()
    on = settings.model_copy(update={"encode_at_record": True})
    modes = {
        ", encoded after commit (server)": (served, on),
        ", encoded in the transaction": (sessions, on),
        ", encode_at_record off": (sessions, settings.model_copy(update={"encode_at_record": False})),
    }
    for name, records in infos.items():
        alone: dict[str, list[float]] = {suffix: [] for suffix in modes}
        flushed: dict[str, list[float]] = {suffix: [] for suffix in modes}
        committed: dict[str, list[float]] = {suffix: [] for suffix in modes}
        order = list(modes.items())
        for n, info in enumerate(records):
            for suffix, (factory, mode) in order[n % 3:] + order[: n % 3]:
                with factory() as session:
                    session.connection()  # a run's transaction is open by the time it records
                    t0 = time.perf_counter()
                    record_trace(session, mode, info)
                    t1 = time.perf_counter()
                    session.flush()
                    t2 = time.perf_counter()
                    session.commit()
                    t3 = time.perf_counter()
                encoder.flush()
                alone[suffix].append((t1 - t0) * 1e6)
                flushed[suffix].append((t2 - t0) * 1e6)
                committed[suffix].append((t3 - t0) * 1e6)
        for suffix in modes:
            times, with_flush = sorted(alone[suffix]), sorted(flushed[suffix])
            with_commit = sorted(committed[suffix])
            result[name + suffix] = {
                "p50_us": _percentile(times, 50), "p99_us": _percentile(times, 99),
                "p50_flushed_us": _percentile(with_flush, 50),
                "p99_flushed_us": _percentile(with_flush, 99),
                "p50_committed_us": _percentile(with_commit, 50),
            }
    encoder.stop()
    result["encoder"] = {"encoded": encoder.stats.encoded, "failed": encoder.stats.failed,
                         "dropped": encoder.stats.dropped}
    engine.dispose()
    return result


RECEIVER_BATCH = 50  # traces per request: what the dispatcher sends for these traces


async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal OTLP receiver: gunzip, parse with opentelemetry-proto, answer the span count."""
    import zlib

    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    status, spans = 200, 0
    try:
        request = ExportTraceServiceRequest.FromString(zlib.decompress(b"".join(chunks), 47))
        spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    except (zlib.error, DecodeError):
        status = 400
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"spans": spans}).encode()})


def child_bare_server(port: str) -> dict[str, Any]:
    """Serve ``_bare_app`` on ``port`` until terminated (uvloop and httptools, one process)."""
    import uvicorn

    uvicorn.run(_bare_app, host="127.0.0.1", port=int(port), log_level="warning",
                access_log=False, lifespan="off", interface="asgi3")
    return {}


@contextmanager
def bare_receiver() -> Iterator[str]:
    """The minimal receiver in a process of its own; yields its URL."""
    import httpx

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "_child", "bare_server", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:  # ready means this receiver answers, not merely that something listens
                if httpx.post(url, content=b"", timeout=1).status_code == 400:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("bare receiver did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def child_receiver(target: str, seconds: str) -> dict[str, Any]:
    """How many observations/s a loopback receiver parses from pre-encoded OTLP batches.

    The issue sets the worker target as a quarter of this. One gzip body of RECEIVER_BATCH
    20-node workflow traces (built and encoded by our own exporter code, once, outside the
    timer) is POSTed again and again by two client threads for ``seconds``; ``target`` is
    ``collector`` (``opstrail collector --accept-only``, the receiver of the throughput
    benchmark) or ``bare`` (gunzip and protobuf parse only).
    """
    import base64
    import gzip
    import threading

    import httpx

    from opstrail.exporters.otlp.encode import encode_bytes
    from opstrail.tracing.build import build_trace

    traces = [build_trace(info) for info in _workflows(str(uuid.uuid4()), RECEIVER_BATCH)]
    spans = sum(len(t.observations) for t in traces)
    body = gzip.compress(encode_bytes(traces), compresslevel=3, mtime=0)
    token = base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()
    headers = {
        "Authorization": f"Basic {token}", "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip", "x-langfuse-ingestion-version": "4",
    }
    receiver = collector(accept_only=True) if target == "collector" else bare_receiver()
    counts = [0, 0]
    with receiver as url:
        endpoint = url + "/api/public/otel/v1/traces"
        def post(http: httpx.Client) -> None:
            response = http.post(endpoint, content=body, headers=headers)
            response.raise_for_status()
            # The bare receiver answers the spans it parsed; the collector answers {}.
            if response.json().get("spans", spans) != spans:
                raise RuntimeError(f"receiver parsed {response.text}, sent {spans} spans")

        with httpx.Client() as warm:  # one request outside the timer: imports, first parse
            post(warm)
        deadline = time.perf_counter() + float(seconds)

        def client(slot: int) -> None:
            with httpx.Client(timeout=30) as http:
                while time.perf_counter() < deadline:
                    post(http)
                    counts[slot] += 1

        started, cpu = time.perf_counter(), _cpu()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
    requests = sum(counts)
    return {  # cpu: the sending client's, not the receiver's
        "observations": requests * spans, "wall": wall, "cpu": cpu, "requests": requests,
        "spans_per_request": spans, "gzip_bytes": len(body),
    }


CHILDREN = {
    "ours": child_ours, "receiver": child_receiver,
    "bare_server": child_bare_server, "sdk": child_sdk, "dify": child_dify, "latency": child_latency,
    "backlog": child_backlog, "record": child_record,
}


# --- driver ------------------------------------------------------------------------------------


def _median_run(kind: str, runs: int, *args: str) -> dict[str, Any]:
    results = [_child(kind, *args) for _ in range(runs)]
    rates = sorted(r["observations"] / r["wall"] for r in results)
    cpu_rates = sorted(r["observations"] / r["cpu"] for r in results)
    return {
        "runs": results,
        "obs_per_s": statistics.median(rates),
        "obs_per_cpu_s": statistics.median(cpu_rates),
        "observations": results[0]["observations"],
    }


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} logical CPUs (shared with other work), "
        f"Linux {platform.release()}, Python {platform.python_version()}; load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what", choices=["all", "throughput", "sdk", "dify", "latency", "backlog", "record", "_child"]
    )
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--traces", type=int, default=4000)  # 1,000 ran 0.3 s: too noisy
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    if options.what == "_child":
        kind, *args = options.rest
        print(json.dumps(CHILDREN[kind](*args), default=str))
        return
    wanted = {options.what} if options.what != "all" else {
        "throughput", "sdk", "dify", "latency", "backlog", "record"
    }
    results: dict[str, Any] = {"machine": _machine(), "date": datetime.now(UTC).isoformat()}
    traces = str(options.traces)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    target = out / "delivery.json"
    plan: list[tuple[str, str, Any]] = []
    if "throughput" in wanted:
        plan.append(("throughput", "ours_otlp", lambda: _median_run("ours", options.runs, "otlp", traces)))
        plan.append(("throughput", "ours_otlp_built", lambda: _median_run("ours", options.runs, "otlp", traces, "built")))
        plan.append(("throughput", "ours_legacy", lambda: _median_run("ours", options.runs, "legacy", traces)))
        plan.append(("throughput", "receiver_collector", lambda: _median_run("receiver", options.runs, "collector", "5")))
        plan.append(("throughput", "receiver_bare", lambda: _median_run("receiver", options.runs, "bare", "5")))
    if "sdk" in wanted:
        plan.append(("sdk", "sdk", lambda: _median_run("sdk", options.runs, traces)))
    if "dify" in wanted:
        dify_traces = str(max(options.traces // 30, 20))
        plan.append(("dify", "dify", lambda: _median_run("dify", options.runs, dify_traces)))
    if "latency" in wanted:
        plan.append(("latency", "latency", lambda: _child("latency", str(options.rate), str(options.seconds))))
    if "backlog" in wanted:
        plan.append(("backlog", "backlog", lambda: _child("backlog", str(options.backlog))))
    if "record" in wanted:
        plan.append(("record", "record", lambda: _child("record", "2000")))
    previous = json.loads(target.read_text()) if target.exists() else {}
    for _section, key, run in plan:
        try:
            results[key] = run()
        except RuntimeError as exc:
            results[key] = {"error": str(exc)}
        # Sections are re-run separately, so each one carries its own time and host.
        results[key]["measured_at"] = datetime.now(UTC).isoformat()
        results[key]["machine"] = results["machine"]
        merged = {**previous, **results}
        target.write_text(json.dumps(merged, indent=2, default=str))
        print(key, json.dumps(results[key], default=str)[:400], flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()

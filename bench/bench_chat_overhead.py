"""Chat request throughput with tracing ON versus OFF (issue "Chat apps": at most 5 % cost).

What runs, all on this machine, in one invocation:

- ``opstrail serve --no-dispatcher`` (SQLite in a fresh temporary data dir): the request path
  only records traces into the outbox; it never delivers.
- ``opstrail worker``: the dispatcher, out of process (decisions.md, "Tests and benchmarks"),
  running for the whole benchmark and delivering to
- ``opstrail collector --accept-only``: a Langfuse 4.x imitation in its own process that
  authenticates and decodes every OTLP request and stores nothing.

The same chat app (offline model ``opstrail``/``offline``, no datasets) is imported twice
through the console API: app A with Langfuse tracing configured and switched on (to the
collector), app B with tracing never configured. A third, diagnostic case ``nodelivery`` runs
app A with the worker stopped for the round (its rows are delivered after the round, untimed):
it separates the request-path cost of a routed trace from the cost of delivery running beside
the server. The benchmark process drives ``POST /v1/chat-messages`` (blocking) over loopback
with httpx from ``--concurrency`` threads, one keep-alive client each, in rounds of
``--requests`` requests in mirrored blocks (A B C C B A ..., so a linear drift in machine load
falls on every case alike). Each thread keeps a conversation
for ``CONVERSATION_LENGTH`` messages, then starts a new one (the first message of a
conversation also names it: a second trace). After every round the benchmark waits until the
worker has delivered everything (untimed), so a round never pays for the previous one.

Reported: median requests/s per case, ON/OFF ratio and overhead, p50/p95 latency per case, CPU
seconds per request of the server, worker, collector and client (from /proc), and the rows
still waiting at the end of ON rounds. Usage::

    .venv/bin/python bench/bench_chat_overhead.py [--rounds 8] [--requests 200] [--concurrency 4]

It rewrites only its own section of docs/benchmarks.md (``--no-docs`` to skip) and prints it.
Variants: ``--postgres ADMIN_URL`` (a fresh PostgreSQL database instead of SQLite),
``--worker-poll SECONDS``, ``--cases on,off``, and ``--profile DIR`` (cProfile of every thread
of serve and worker; prints the top functions and never writes the docs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Chat request overhead (tracing on vs off)"
CONSOLE_TOKEN = "bench-console-token"
PUBLIC_KEY, SECRET_KEY, PROJECT = "pk-lf-chatbench", "sk-lf-chatbench", "chatbench"
CONVERSATION_LENGTH = 5
TARGET_OVERHEAD = 5.0  # percent, from the issue
CLK_TCK = os.sysconf("SC_CLK_TCK")

CHAT_APP = """\
app:
  description: Benchmark chat app (offline model).
  icon: "\\U0001F916"
  icon_background: '#E0F2FE'
  mode: chat
  name: {name}
kind: app
version: 0.6.0
model_config:
  agent_mode:
    enabled: false
    tools: []
  dataset_configs:
    datasets:
      datasets: []
    retrieval_model: multiple
  model:
    completion_params:
      temperature: 0.2
      max_tokens: 256
    mode: chat
    name: offline
    provider: opstrail
  opening_statement: Hi! Ask me anything.
  pre_prompt: 'You are a helpful assistant. Answer in a {{{{tone}}}} tone.'
  prompt_type: simple
  suggested_questions_after_answer:
    enabled: false
  user_input_form:
  - select:
      default: friendly
      label: Tone
      options:
      - friendly
      - formal
      required: false
      variable: tone
"""


# --- processes ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_env(data_dir: Path) -> dict[str, str]:
    # Like tests/ops/processes.py: no LANGFUSE_*/OPSTRAIL_* from the caller, loopback hosts only.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OPSTRAIL_"))}
    env.update(
        OPSTRAIL_DATA_DIR=str(data_dir),
        OPSTRAIL_CONSOLE_TOKEN=CONSOLE_TOKEN,
        OPSTRAIL_LOOPBACK_ONLY_HOSTS="true",
        OPSTRAIL_LOG_JSON="true",
    )
    return env


@contextmanager
def _process(
    args: list[str], env: dict[str, str], log: Path, profile: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m opstrail ARGS`` (under ``_profiled`` when ``profile`` is a path)."""
    command = [sys.executable, "-m", "opstrail", *args]
    if profile is not None:
        command = [sys.executable, __file__, "_profiled", str(profile), *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} never became ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _profiled(out: str, args: list[str]) -> None:
    """Run the opstrail CLI with ARGS, profiling every thread (cProfile profiles only the
    thread that enables it; requests run in worker threads); dump merged stats to OUT at exit."""
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []
    # _bootstrap_inner, not run: anyio's worker threads (where sync endpoints run) override run.
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = bootstrap  # type: ignore[attr-defined]
    main_profile = cProfile.Profile()
    profiles.append(main_profile)
    sys.argv = ["opstrail", *args]
    from opstrail.cli.main import main as cli_main

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    # uvicorn re-raises SIGTERM after its graceful shutdown: make that an exit we see.
    signal.signal(signal.SIGTERM, _exit)

    main_profile.enable()
    try:
        cli_main()
    except SystemExit:
        pass
    finally:
        main_profile.disable()
        merged: pstats.Stats | None = None
        for profile in profiles:
            try:
                merged = pstats.Stats(profile) if merged is None else merged.add(profile)
            except TypeError:  # a thread that never ran any Python code
                continue
        if merged is not None:
            merged.dump_stats(out)


def _print_profile(path: Path, title: str, limit: int = 25) -> None:
    import pstats

    print(f"\n===== {title}: {path} (top {limit} by own time, then by cumulative) =====")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- setup through the console API ------------------------------------------------------------


def _import_app(console: httpx.Client, name: str) -> tuple[str, str]:
    answer = console.post(
        "/apps/imports", json={"mode": "yaml-content", "yaml_content": CHAT_APP.format(name=name)}
    )
    answer.raise_for_status()
    app_id = answer.json()["app_id"]
    token = console.post(f"/apps/{app_id}/api-keys")
    token.raise_for_status()
    return app_id, token.json()["token"]


def _enable_tracing(console: httpx.Client, app_id: str, collector_url: str) -> None:
    saved = console.post(
        f"/apps/{app_id}/trace-config",
        json={
            "tracing_provider": "langfuse",
            "tracing_config": {"public_key": PUBLIC_KEY, "secret_key": SECRET_KEY,
                               "host": collector_url},
        },
    )
    if saved.status_code != 200:
        raise RuntimeError(f"trace-config refused: {saved.status_code} {saved.text}")
    switched = console.post(
        f"/apps/{app_id}/trace", json={"enabled": True, "tracing_provider": "langfuse"}
    )
    switched.raise_for_status()


def _status(console: httpx.Client, app_id: str) -> dict[str, Any]:
    answer = console.get(f"/apps/{app_id}/trace-status")
    answer.raise_for_status()
    return dict(answer.json())


def _wait_drained(console: httpx.Client, app_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll until app A has nothing pending or retrying; fail on dead rows."""
    deadline = time.monotonic() + timeout
    while True:
        status = _status(console, app_id)
        if status["dead"]:
            raise RuntimeError(f"dead outbox rows: {status}")
        if status["pending"] == 0 and status["retrying"] == 0:
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"outbox not drained within {timeout} s: {status}")
        time.sleep(0.05)


# --- load ---------------------------------------------------------------------------------------


@dataclass
class Round:
    case: str  # "on" or "off"
    requests: int
    seconds: float
    latencies: list[float]
    server_cpu: float
    worker_cpu: float
    collector_cpu: float
    client_cpu: float
    backlog_at_end: int = 0
    drain_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _drive(url: str, token: str, requests: int, concurrency: int, tag: str) -> tuple[float, list[float], list[str]]:
    """Send ``requests`` blocking chat messages from ``concurrency`` threads; wall time."""
    lock = threading.Lock()
    remaining = [requests]
    latencies: list[float] = []
    errors: list[str] = []
    clients = [
        httpx.Client(base_url=f"{url}/v1", headers={"Authorization": f"Bearer {token}"},
                     timeout=60)
        for _ in range(concurrency)
    ]
    start_gate = threading.Barrier(concurrency + 1)

    def worker(index: int) -> None:
        client = clients[index]
        conversation = ""
        sent = 0
        own: list[float] = []
        start_gate.wait()
        while True:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            if sent % CONVERSATION_LENGTH == 0:
                conversation = ""
            body = {"inputs": {"tone": "formal"}, "query": f"{tag} question {index}-{sent}?",
                    "response_mode": "blocking", "user": f"bench-{index}",
                    "conversation_id": conversation}
            began = time.perf_counter()
            answer = client.post("/chat-messages", json=body)
            own.append(time.perf_counter() - began)
            sent += 1
            if answer.status_code != 200:
                with lock:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                conversation = ""
                continue
            conversation = answer.json()["conversation_id"]
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    for client in clients:
        client.close()
    return seconds, latencies, errors


CASES = ("on", "off", "nodelivery")
LABELS = {
    "on": "ON: tracing to the collector (app A)",
    "off": "OFF: tracing not configured (app B)",
    "nodelivery": "diagnostic: app A with the worker stopped",
}


def _order(rounds: int, cases: tuple[str, ...]) -> list[str]:
    """``rounds`` of each case, in mirrored blocks (A B B A, or A B C C B A)."""
    block = [*cases, *reversed(cases)]
    order: list[str] = []
    while len(order) < rounds * len(cases):
        for case in block:
            if order.count(case) < rounds:
                order.append(case)
    return order


class Worker:
    """The out-of-process dispatcher: one ``opstrail worker`` that can be stopped and restarted."""

    def __init__(self, env: dict[str, str], log: Path, profile: Path | None) -> None:
        self._env, self._log, self._profile = env, log, profile
        self._stack: ExitStack | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._stack = ExitStack()
        self.proc = self._stack.enter_context(
            _process(["worker", "--log-level", "warning"], self._env, self._log, self._profile)
        )

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self.proc = None, None

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid) if self.proc is not None else 0.0


# --- report -------------------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.machine()}, {platform.system()} {platform.release()}",
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _paired(rounds: list[Round], case: str) -> list[float]:
    """Each ``case`` round against the mean of the nearest OFF round on each side."""
    ratios = []
    for i, r in enumerate(rounds):
        if r.case != case:
            continue
        near = []
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(rounds) and rounds[j].case != "off":
                j += step
            if 0 <= j < len(rounds):
                near.append(rounds[j].rate)
        if near:
            ratios.append(r.rate / statistics.mean(near))
    return ratios


def summarize(rounds: list[Round]) -> dict[str, Any]:
    """Per case: median req/s, latencies, CPU per request; ratios against OFF."""
    out: dict[str, Any] = {}
    for case in CASES:
        mine = [r for r in rounds if r.case == case]
        if not mine:
            continue
        latencies = [x for r in mine for x in r.latencies]
        requests = sum(r.requests for r in mine)
        out[case] = {
            "rates": [round(r.rate, 2) for r in mine],
            "median_rate": statistics.median(r.rate for r in mine),
            "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * _pct(latencies, 0.95),
            "server_cpu_ms": 1000 * sum(r.server_cpu for r in mine) / requests,
            "worker_cpu_ms": 1000 * sum(r.worker_cpu for r in mine) / requests,
            "collector_cpu_ms": 1000 * sum(r.collector_cpu for r in mine) / requests,
            "client_cpu_ms": 1000 * sum(r.client_cpu for r in mine) / requests,
            "max_backlog": max(r.backlog_at_end for r in mine),
            "max_drain_s": max(r.drain_seconds for r in mine),
            "errors": sum(len(r.errors) for r in mine),
        }
    for case in out:
        if case != "off":
            ratio = out[case]["median_rate"] / out["off"]["median_rate"]
            paired = _paired(rounds, case)
            out[case].update(
                ratio=ratio,
                overhead_pct=100 * (1 - ratio),
                paired_ratios=[round(p, 3) for p in paired],
                paired_overhead_pct=100 * (1 - statistics.median(paired)),
            )
    return out


def render(meta: dict[str, Any], summary: dict[str, Any]) -> str:
    """The Markdown section for docs/benchmarks.md."""
    on, off = summary["on"], summary["off"]
    overhead = on["overhead_pct"]
    verdict = "**met**" if overhead <= TARGET_OVERHEAD else "**not met**"
    poll = (f"{meta['worker_poll']:g} s" if meta["worker_poll"] is not None
            else "0.05 s, the default")
    cases = "two cases" if "nodelivery" not in summary else "three cases"
    pattern = "A B B A" if "nodelivery" not in summary else "A B C C B A"
    lines = [
        SECTION,
        "",
        "Written by `bench/bench_chat_overhead.py` (re-run it to refresh this section). "
        "Tracing ON versus OFF for the same chat app, on the same machine, in one run. "
        f"`opstrail serve --no-dispatcher` on {meta['database']} answers; the dispatcher runs "
        f"**out of process**, as one `opstrail worker` (idle poll interval {poll}), delivering to "
        "`opstrail collector --accept-only` "
        "(a Langfuse 4.16 imitation in its own process that authenticates and decodes every "
        "OTLP request and stores nothing). The benchmark process drives blocking "
        "`POST /v1/chat-messages` over loopback with httpx from "
        f"{meta['concurrency']} threads (one keep-alive client each), in {meta['rounds']} rounds "
        f"per case of {meta['requests']} requests, {cases} interleaved as {pattern} ..., after "
        f"{meta['warmup']} warm-up requests per app. Each thread keeps a conversation for "
        f"{CONVERSATION_LENGTH} messages, so 1 request in {CONVERSATION_LENGTH} also generates "
        "the conversation's name (a second trace, in the same request). The app: simple chat "
        "prompt, offline model (`opstrail`/`offline`), no datasets, no moderation. After every "
        "ON round the benchmark waits (untimed) until the worker has delivered everything, so "
        "no round pays for the previous one.",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']['cpu']}, {meta['machine']['cpus']} logical CPUs (shared "
        f"with other work), {meta['machine']['system']}; Python {meta['machine']['python']}",
        f"- Load average at start: {meta['load_start']}; at end: {meta['load_end']}",
        "",
        "| case | median req/s | req/s per round | p50 latency | p95 latency "
        "| server CPU / req | worker CPU / req | collector CPU / req | client CPU / req |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        if case not in summary:
            continue
        data = summary[case]
        lines.append(
            f"| {LABELS[case]} | {data['median_rate']:.1f} | "
            f"{', '.join(f'{x:.0f}' for x in data['rates'])} | {data['p50_ms']:.1f} ms | "
            f"{data['p95_ms']:.1f} ms | {data['server_cpu_ms']:.2f} ms | "
            f"{data['worker_cpu_ms']:.2f} ms | {data['collector_cpu_ms']:.2f} ms | "
            f"{data['client_cpu_ms']:.2f} ms |"
        )
    lines += [
        "",
        f"ON/OFF ratio of the medians: **{on['ratio']:.3f}**, i.e. tracing costs "
        f"**{overhead:.1f} %** of chat throughput in this run. Each ON round against the "
        f"nearest OFF round on each side: ratios "
        f"{', '.join(f'{p:.3f}' for p in on['paired_ratios'])} (median overhead "
        f"{on['paired_overhead_pct']:.1f} %). Target: at most {TARGET_OVERHEAD:.0f} %: "
        f"{verdict} in this run. Latency: p50 {on['p50_ms']:.1f} ms ON versus "
        f"{off['p50_ms']:.1f} ms OFF.",
        "",
    ]
    if "nodelivery" in summary:
        nd = summary["nodelivery"]
        negative = (", negative: faster than OFF, i.e. lost in the noise"
                    if nd["overhead_pct"] < 0 else "")
        lines += [
            "The diagnostic case splits the cost: app A again, tracing ON, but with the worker "
            "stopped for the round (its rows wait as `pending` and are delivered after the "
            "round, untimed). Against OFF it keeps only the request-path difference (the row "
            "is routed, which needs the app's tracing switch and provider config read in the "
            f"request): ratio {nd['ratio']:.3f} ({nd['overhead_pct']:.1f} %; paired median "
            f"{nd['paired_overhead_pct']:.1f} %{negative}). The rest of the ON cost is delivery running "
            "beside the server on the same cores: the worker's CPU, its database writes (claim, "
            "mark delivered, acknowledgements) contending with the server's, and the "
            "collector's CPU.",
            "",
        ]
    share = 100 * (on["worker_cpu_ms"] + on["collector_cpu_ms"]) / on["server_cpu_ms"]
    lines += [
        f"Delivery costs {on['worker_cpu_ms']:.2f} ms of worker CPU and "
        f"{on['collector_cpu_ms']:.2f} ms of collector CPU per ON request, i.e. {share:.0f} % of "
        f"the server's own {on['server_cpu_ms']:.2f} ms. On a machine whose cores are busy "
        "(this one: 2 cores, shared with other jobs) that CPU competes directly with the "
        "server and the client; with idle cores it would run beside them, leaving mostly the "
        "request-path part and the database contention.",
        "",
        f"At the end of an ON round at most {on['max_backlog']} outbox rows were still waiting "
        f"for the worker; the longest wait until all were delivered was {on['max_drain_s']:.2f} s "
        f"(the worker keeps up). Requests that failed: "
        f"{sum(summary[c]['errors'] for c in CASES if c in summary)}. Traces delivered and "
        f"acknowledged during the run: {meta['delivered']} (for {meta['on_messages']} ON "
        "messages, plus the conversation names).",
        "",
        "What OFF means here: app B has no tracing configuration, yet "
        "`services/trace_recording.record_trace` still applies the (default) content policy, "
        "serializes the trace info and inserts its outbox row, in state `unrouted` (kept for "
        "`opstrail export`, never sent by the dispatcher; "
        f"{meta['unrouted']} such rows were written for app B in this run). So OFF is not "
        "\"no tracing code at all\": both cases pay the in-request recording, and the figure "
        "above is the cost of routing and delivering: for ON, the server's encoder thread "
        "also builds and encodes each trace after its commit (its CPU is in the server's "
        "column), and the worker sends it. The worker also runs during OFF rounds "
        f"(idle: it polls the outbox every {poll.split(',')[0]}). CPU per request is user+system time from "
        "/proc of each process over the timed rounds only (client: the benchmark process "
        "driving the load); all four processes share the same cores, so any CPU the worker "
        "and the collector use is CPU the server and client cannot. On this shared machine "
        "req/s vary by 10-30 % from round to round with other jobs: read the medians and "
        "ratios, not single rounds, and expect a few points of difference between runs.",
        "",
    ]
    return "\n".join(lines)


def update_docs(section: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (or append it); others untouched."""
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", text, count=1)
        text = text.rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    DOCS.write_text(text, encoding="utf-8")


# --- main ---------------------------------------------------------------------------------------


def run(options: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], list[Round]]:
    """Start the processes, set up the two apps, run the rounds; returns meta, summary, rounds."""
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    with ExitStack() as stack:
        if not options.keep:
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        options.postgres_url = (
            stack.enter_context(_postgres_database(options.postgres)) if options.postgres else None
        )
        return _run_in(work, options, load_start)
    raise AssertionError("unreachable")  # mypy: ExitStack may swallow exceptions


@contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards; yields its URL."""
    import uuid

    import psycopg

    name = f"opstrail_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin_url.rsplit("/", 1)[0]
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _run_in(
    work: Path, options: argparse.Namespace, load_start: str
) -> tuple[dict[str, Any], dict[str, Any], list[Round]]:
    env = _child_env(work / "data")
    database = "SQLite (WAL) in a temporary data dir"
    if options.postgres_url:
        env["OPSTRAIL_DATABASE_URL"] = options.postgres_url
        database = "PostgreSQL (a fresh database on the local server)"
    profile_dir: Path | None = options.profile
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    cases: tuple[str, ...] = options.cases
    worker_env = dict(env)
    if options.worker_poll is not None:
        worker_env["OPSTRAIL_DISPATCH_POLL_INTERVAL"] = str(options.worker_poll)
    if options.keep:
        print(f"data dir and logs: {work}", file=sys.stderr)
    worker = Worker(worker_env, work / "worker.log",
                    profile_dir / "worker.prof" if profile_dir else None)
    with ExitStack() as stack:
        collector_port = _free_port()
        collector_url = f"http://127.0.0.1:{collector_port}"
        collector_log = work / "collector.log"
        collector = stack.enter_context(_process(
            ["collector", "--port", str(collector_port), "--accept-only",
             "--keys", f"{PUBLIC_KEY}:{SECRET_KEY}:{PROJECT}", "--data-dir", str(work / "coll")],
            env, collector_log))
        _wait_ready(collector, f"{collector_url}/api/public/health", collector_log, "collector")

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        serve_log = work / "serve.log"
        server = stack.enter_context(_process(
            ["serve", "--port", str(port), "--no-dispatcher", "--log-level", "warning"],
            env, serve_log, profile_dir / "serve.prof" if profile_dir else None))
        _wait_ready(server, f"{url}/readyz", serve_log, "serve")

        console = stack.enter_context(httpx.Client(
            base_url=f"{url}/console/api", headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"},
            timeout=60))
        app_on, token_on = _import_app(console, "Bench chat (tracing on)")
        app_off, token_off = _import_app(console, "Bench chat (tracing off)")
        _enable_tracing(console, app_on, collector_url)
        if _status(console, app_off)["state"] != "not_configured":
            raise RuntimeError("app B should have no tracing configuration")

        worker.start()
        stack.callback(worker.stop)
        tokens = {"on": token_on, "off": token_off, "nodelivery": token_on}

        for case in ("on", "off"):  # warm-up: imports, caches, SQLite pages
            _seconds, _lat, errors = _drive(url, tokens[case], options.warmup,
                                            options.concurrency, f"warmup-{case}")
            if errors:
                raise RuntimeError(f"warm-up failed: {errors[:3]}")
        _wait_drained(console, app_on)

        rounds: list[Round] = []
        for index, case in enumerate(_order(options.rounds, cases)):
            if case == "nodelivery":
                worker.stop()
            elif worker.proc is None or worker.proc.poll() is not None:
                raise RuntimeError(f"the worker is not running: {(work / 'worker.log').read_text()[-2000:]}")
            pids = (server.pid, collector.pid, os.getpid())
            before = [_cpu_seconds(pid) for pid in pids]
            worker_before = worker.cpu()
            seconds, latencies, errors = _drive(url, tokens[case], options.requests,
                                                options.concurrency, f"r{index}")
            server_cpu, collector_cpu, client_cpu = (
                _cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True))
            result = Round(case, options.requests, seconds, latencies, server_cpu,
                           worker.cpu() - worker_before, collector_cpu, client_cpu, errors=errors)
            if case == "nodelivery":
                worker.start()
            if case != "off":
                status = _status(console, app_on)
                result.backlog_at_end = status["pending"] + status["retrying"]
                began = time.perf_counter()
                _wait_drained(console, app_on)
                result.drain_seconds = time.perf_counter() - began
            rounds.append(result)
            print(f"round {index + 1:2d} {case:10s}: {result.rate:7.1f} req/s, "
                  f"backlog {result.backlog_at_end}, errors {len(errors)}", file=sys.stderr)

        final = _wait_drained(console, app_on)
        on_messages = options.warmup + sum(r.requests for r in rounds if r.case != "off")
        unrouted = _count_unrouted(work / "data", options.postgres_url, app_off)
    summary = summarize(rounds)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "rounds": options.rounds,
        "requests": options.requests,
        "concurrency": options.concurrency,
        "warmup": options.warmup,
        "database": database,
        "worker_poll": options.worker_poll,
        "delivered": final["delivered"],
        "on_messages": on_messages,
        "unrouted": unrouted,
    }
    if final["delivered"] < on_messages:
        raise RuntimeError(f"only {final['delivered']} traces delivered for {on_messages} messages")
    if profile_dir is not None:
        _print_profile(profile_dir / "serve.prof", "opstrail serve")
        _print_profile(profile_dir / "worker.prof", "opstrail worker")
    return meta, summary, rounds


def _count_unrouted(data_dir: Path, postgres_url: str | None, app_id: str) -> int:
    """Outbox rows of app B in state ``unrouted`` (a read-only look at the database)."""
    query = "SELECT state, count(*) FROM outbox WHERE app_id = {} GROUP BY state"
    if postgres_url:
        import psycopg

        url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url) as conn:
            rows = conn.execute(query.format("%s"), (app_id,)).fetchall()
    else:
        import sqlite3

        files = sorted(data_dir.glob("*.db"))
        if not files:
            raise RuntimeError(f"no SQLite database in {data_dir}")
        with sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True) as db:
            rows = db.execute(query.format("?"), (app_id,)).fetchall()
    states: dict[str, int] = {str(state): int(count) for state, count in rows}
    if set(states) - {"unrouted"}:
        raise RuntimeError(f"app B has outbox rows in other states: {states}")
    return int(states.get("unrouted", 0))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_profiled":
        _profiled(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="Timed rounds per case.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per round.")
    parser.add_argument("--concurrency", type=int, default=4, help="Client threads.")
    parser.add_argument("--warmup", type=int, default=100, help="Warm-up requests per app.")
    parser.add_argument("--cases", default="on,off,nodelivery",
                        help="Comma-separated cases: on, off (required) and nodelivery "
                        "(diagnostic: app A with the worker stopped during the round).")
    parser.add_argument("--worker-poll", type=float, default=None,
                        help="OPSTRAIL_DISPATCH_POLL_INTERVAL of the worker [default: the "
                        "product default, 0.05 s].")
    parser.add_argument("--postgres", default=None, metavar="ADMIN_URL",
                        help="Run on a fresh PostgreSQL database created through ADMIN_URL "
                        "(e.g. postgresql://postgres@127.0.0.1:5432/test; dropped after) "
                        "instead of SQLite.")
    parser.add_argument("--profile", type=Path, default=None,
                        help="Profile serve and worker (cProfile, every thread) into this "
                        "directory and print the top functions; figures are then distorted "
                        "and the docs are not written.")
    parser.add_argument("--no-docs", action="store_true", help="Do not rewrite docs/benchmarks.md.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the temporary data dir and process logs (path is printed).")
    parser.add_argument("--json", type=Path, default=None, help="Also write raw figures here.")
    options = parser.parse_args()
    if options.rounds < 1 or options.requests < 1 or options.concurrency < 1:
        parser.error("--rounds, --requests and --concurrency must be at least 1")
    cases = tuple(c.strip() for c in options.cases.split(",") if c.strip())
    if "off" not in cases or not set(cases) <= set(CASES) or len(set(cases)) < 2:
        parser.error(f"--cases: 'off' and at least one of on/nodelivery, from {CASES}")
    if options.profile is not None and "nodelivery" in cases:
        parser.error("--profile needs one worker process: leave out the nodelivery case")
    options.cases = tuple(c for c in CASES if c in cases)
    meta, summary, rounds = run(options)
    section = render(meta, summary)
    print(section)
    if options.json is not None:
        options.json.write_text(json.dumps(
            {"meta": meta, "summary": summary,
             "rounds": [{"case": r.case, "rate": r.rate, "seconds": r.seconds,
                         "server_cpu": r.server_cpu, "worker_cpu": r.worker_cpu,
                         "collector_cpu": r.collector_cpu, "client_cpu": r.client_cpu,
                         "backlog": r.backlog_at_end, "drain_seconds": r.drain_seconds,
                         "errors": r.errors} for r in rounds]},
            indent=2), encoding="utf-8")
    if not options.no_docs and options.profile is None:
        update_docs(section)


if __name__ == "__main__":
    main()

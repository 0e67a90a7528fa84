"""``run_demo``: the scripted tour of the whole path, from a fresh data dir to Langfuse."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opstrail.cli.demo.render import trace_tree
from opstrail.cli.demo.script import (
    ConsoleClient,
    DemoApp,
    DemoFailure,
    ExpectedTrace,
    LangfuseReader,
    ServiceClient,
    check_trace,
    message_trace,
    title_trace,
    wait_until,
    workflow_trace,
)
from opstrail.cli.demo.server import running_server
from opstrail.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
HANDBOOK_DATASET_ID = "5b0f7a2e-7c1d-4a8e-9a51-0d1f2c3b4a5e"
DEMO_KEYS = ("pk-lf-demo", "sk-lf-demo", "demo")


@dataclass(frozen=True)
class LangfuseTarget:
    host: str
    public_key: str
    secret_key: str
    external: bool


def _external_target() -> LangfuseTarget | None:
    public = os.environ.get("LANGFUSE_PUBLIC_KEY")
    secret = os.environ.get("LANGFUSE_SECRET_KEY")
    host = os.environ.get("LANGFUSE_HOST")
    if public and secret and host:
        return LangfuseTarget(host.rstrip("/"), public, secret, external=True)
    return None


def run_demo(
    *, data_dir: Path | None, quick: bool, use_env_langfuse: bool, console: Console
) -> int:
    """Run the demo; return the process exit code (0 only if every trace arrived valid)."""
    started = time.monotonic()
    with ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opstrail-demo-")))
        target = _external_target() if use_env_langfuse else None
        if target is None:
            from opstrail.collector.testing import running_collector

            collector = stack.enter_context(
                running_collector(keys=(DEMO_KEYS,), data_dir=data_dir / "collector")
            )
            target = LangfuseTarget(collector.url, DEMO_KEYS[0], DEMO_KEYS[1], external=False)
            console.print(f"[bold]Local Langfuse-compatible collector[/] at {collector.url}")
        else:
            console.print(f"[bold]Sending to Langfuse[/] at {target.host}")
        token = secrets.token_urlsafe(24)
        settings = Settings(
            data_dir=data_dir / "opstrail",
            console_token=token,
            model_fallback="offline",
            dispatch_poll_interval=0.02,
        )
        base_url = stack.enter_context(running_server(settings))
        console.print(f"[bold]opstrail[/] serving at {base_url} (SQLite in {settings.data_dir})")
        console_api = ConsoleClient(base_url, token)
        stack.callback(console_api.close)
        reader = LangfuseReader(target.host, target.public_key, target.secret_key)
        stack.callback(reader.close)

        apps = _set_up_apps(console_api, target, console)
        expected = _run_script(base_url, apps, quick=quick, console=console)
        received = _wait_for_delivery(console_api, reader, apps, expected, target, console)
        return _report(expected, received, target, console, started)
    return 1  # pragma: no cover  (ExitStack never swallows)


def _set_up_apps(console_api: ConsoleClient, target: LangfuseTarget, console: Console) -> dict[str, DemoApp]:
    from opstrail.cli.demo.datasets import create_dataset

    create_dataset(
        console_api, name="ACME handbook", dataset_id=HANDBOOK_DATASET_ID,
        directory=EXAMPLES / "datasets" / "handbook",
    )
    apps = {
        "chat": DemoApp("chat", EXAMPLES / "apps" / "handbook_chat.yml"),
        "agent": DemoApp("agent", EXAMPLES / "apps" / "clock_calculator_agent.yml"),
        "workflow": DemoApp("workflow", EXAMPLES / "apps" / "ticket_triage_workflow.yml"),
        "chatflow": DemoApp("chatflow", EXAMPLES / "apps" / "memory_chatflow.yml"),
    }
    for app in apps.values():
        result = console_api.call(
            "POST", "/apps/imports",
            json={"mode": "yaml-content", "yaml_content": app.path.read_text(encoding="utf-8")},
        )
        app.app_id = result["app_id"]
        app.mode = result.get("app_mode", "")
        for warning in result.get("warnings") or []:
            console.print(f"  [yellow]import warning[/] {app.path.name}: {warning}")
        app.token = console_api.call("POST", f"/apps/{app.app_id}/api-keys")["token"]
        console_api.call(
            "POST", f"/apps/{app.app_id}/trace-config",
            json={
                "tracing_provider": "langfuse",
                "tracing_config": {
                    "public_key": target.public_key,
                    "secret_key": target.secret_key,
                    "host": target.host,
                },
            },
        )
        console_api.call(
            "POST", f"/apps/{app.app_id}/trace", json={"enabled": True, "tracing_provider": "langfuse"}
        )
        console.print(f"  imported [cyan]{app.path.name}[/] ({app.mode}) -> tracing enabled")
    return apps


def _run_script(base_url: str, apps: dict[str, DemoApp], *, quick: bool, console: Console) -> list[ExpectedTrace]:
    expected: list[ExpectedTrace] = []
    user = "demo-user-42"

    chat = ServiceClient(base_url, apps["chat"].token)
    try:
        first = chat.post("/chat-messages", {
            "inputs": {"tone": "friendly"}, "query": "How many vacation days do I get?",
            "response_mode": "blocking", "user": user,
        })
        conversation_id = first["conversation_id"]
        expected.append(message_trace("chat", "chat with retrieval", first["message_id"],
                                      must_have_types=("generation", "retriever", "guardrail"),
                                      min_observations=3))
        expected.append(title_trace("chat", conversation_id))
        events = chat.stream("/chat-messages", {
            "inputs": {"tone": "formal"}, "query": "What is the daily meal allowance when travelling?",
            "conversation_id": conversation_id, "user": user,
        })
        streamed_id = next(e["message_id"] for e in events if e.get("message_id"))
        expected.append(message_trace("chat", "streamed chat", streamed_id,
                                      must_have_types=("generation", "retriever")))
        flagged = chat.post("/chat-messages", {
            "inputs": {}, "query": "Tell me the salary of my manager", "response_mode": "blocking",
            "conversation_id": conversation_id, "user": user,
        })
        expected.append(message_trace("chat", "flagged by moderation", flagged["message_id"],
                                      must_have_types=("guardrail",), must_have_levels=("WARNING",)))
        chat.post(f"/messages/{first['message_id']}/feedbacks", {"rating": "like", "user": user,
                                                                  "content": "Clear answer"})
    finally:
        chat.close()
    console.print("  chat app: 3 messages, 1 flagged, 1 rated")

    agent = ServiceClient(base_url, apps["agent"].token)
    try:
        for query in ("What is 12 * (3 + 4)?", "What time is it now?")[: 1 if quick else 2]:
            answer = agent.post("/chat-messages", {"inputs": {}, "query": query,
                                                   "response_mode": "blocking", "user": user})
            expected.append(message_trace("agent", f"agent: {query}", answer["message_id"],
                                          must_have_types=("agent", "tool", "generation")))
            expected.append(title_trace("agent", answer["conversation_id"]))
    finally:
        agent.close()
    console.print("  agent app: tool calls")

    workflow = ServiceClient(base_url, apps["workflow"].token)
    try:
        blocking = workflow.post("/workflows/run", {
            "inputs": {"tickets": "Printer on floor 3 is jammed\nVPN drops every hour\nNeed a new badge",
                       "priority": "high"},
            "response_mode": "blocking", "user": user,
        })
        expected.append(workflow_trace("workflow", "workflow (high priority)", blocking["workflow_run_id"],
                                       must_have_types=("chain", "generation"), min_observations=8))
        if not quick:
            events = workflow.stream("/workflows/run", {
                "inputs": {"tickets": "Coffee machine broken", "priority": "low"}, "user": user,
            })
            run_id = next(e["workflow_run_id"] for e in events if e.get("workflow_run_id"))
            expected.append(workflow_trace("workflow", "workflow (streamed, low)", run_id,
                                           must_have_types=("chain",)))
    finally:
        workflow.close()
    console.print("  workflow app: runs with if-else, iteration and code")

    chatflow = ServiceClient(base_url, apps["chatflow"].token)
    try:
        turn1 = chatflow.post("/chat-messages", {"inputs": {}, "query": "My favourite colour is teal.",
                                                 "response_mode": "blocking", "user": user})
        turn2 = chatflow.post("/chat-messages", {"inputs": {}, "query": "What did I just tell you?",
                                                 "response_mode": "blocking", "user": user,
                                                 "conversation_id": turn1["conversation_id"]})
        for turn in (turn1, turn2):
            run_id = turn.get("workflow_run_id") or (turn.get("metadata") or {}).get("workflow_run_id")
            if not run_id:
                raise DemoFailure("the chatflow answer carries no workflow_run_id")
            expected.append(workflow_trace("chatflow", "chatflow turn", run_id,
                                           must_have_types=("chain", "generation")))
        expected.append(title_trace("chatflow", turn1["conversation_id"]))
    finally:
        chatflow.close()
    console.print("  chatflow app: two turns with memory")
    return expected


def _wait_for_delivery(
    console_api: ConsoleClient, reader: LangfuseReader, apps: dict[str, DemoApp],
    expected: list[ExpectedTrace], target: LangfuseTarget, console: Console,
) -> dict[str, tuple[dict[str, Any], float]]:
    received: dict[str, tuple[dict[str, Any], float]] = {}
    timeout = 120.0 if target.external else 60.0
    with Progress(TextColumn("[bold]delivering traces"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("deliver", total=len(expected))

        def all_arrived() -> bool:
            for item in expected:
                if item.trace_id in received:
                    continue
                trace = reader.trace(item.trace_id)
                if trace is not None and len(trace.get("observations") or []) >= item.min_observations:
                    received[item.trace_id] = (trace, time.time() - item.started_at)
            progress.update(task, completed=len(received))
            return len(received) == len(expected)

        wait_until(all_arrived, timeout, interval=0.05)
    for app in apps.values():
        status = console_api.call("GET", f"/apps/{app.app_id}/trace-status")
        console.print(f"  {app.key:<9} state={status.get('state')} delivered={status.get('delivered')} "
                      f"pending={status.get('pending')} dead={status.get('dead')}")
    return received


def _report(
    expected: list[ExpectedTrace], received: dict[str, tuple[dict[str, Any], float]],
    target: LangfuseTarget, console: Console, started: float,
) -> int:
    problems: list[str] = []
    table = Table(title="Traces")
    for column in ("app", "run", "trace", "observations", "tokens", "seen after", "result"):
        table.add_column(column)
    total_obs = total_tokens = 0
    latencies: list[float] = []
    for item in expected:
        got = received.get(item.trace_id)
        if got is None:
            problems.append(f"{item.label}: trace {item.trace_id} never arrived")
            table.add_row(item.app, item.label, item.trace_id[:12], "-", "-", "-", "[red]missing")
            continue
        trace, latency = got
        issues = check_trace(item, trace)
        problems.extend(f"{item.label}: {issue}" for issue in issues)
        observations = trace.get("observations") or []
        tokens = sum(int((o.get("usageDetails") or {}).get("total") or 0) for o in observations)
        total_obs += len(observations)
        total_tokens += tokens
        latencies.append(latency)
        if not target.external:
            console.print(trace_tree(trace))
        else:
            project = trace.get("projectId", "")
            console.print(f"  {item.label}: {target.host}/project/{project}/traces/{item.trace_id}")
        table.add_row(item.app, item.label, item.trace_id[:12], str(len(observations)), str(tokens),
                      f"{latency * 1000:.0f} ms", "[green]ok" if not issues else "[red]invalid")
    console.print(table)
    summary = Table(title="Summary")
    # "seen after": from the run's answer to the trace being readable at the destination,
    # polled every 50 ms (an upper bound of the delivery latency).
    for column in ("traces expected", "traces received", "observations", "tokens",
                   "seen after (p50)", "wall time"):
        summary.add_column(column)
    latencies.sort()
    p50 = f"{latencies[len(latencies) // 2] * 1000:.0f} ms" if latencies else "-"
    summary.add_row(str(len(expected)), str(len(received)), str(total_obs), str(total_tokens), p50,
                    f"{time.monotonic() - started:.1f} s")
    console.print(summary)
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
        return 1
    console.print("[bold green]✓ every trace was delivered and valid[/]")
    return 0

"""CLI: `opstrail traces list|show` over a collector's data dir, and `opstrail collector`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from opstrail.cli.main import build_app
from opstrail.collector.testing import running_collector

from .otlp_requests import TRACE_ID, TRACE_NAME, SpanSpec, chat_spans, export_request

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(name="data_dir")
def _data_dir(tmp_path: Path) -> Path:
    """A collector data dir holding the chat trace and an orphan span of another trace."""
    directory = tmp_path / "collector"
    with running_collector(data_dir=directory) as collector:
        orphan = SpanSpec(
            "c0c0c0c0c0c0c0c0", "lost", parent_id="d0d0d0d0d0d0d0d0", trace_id="e" * 32
        )
        body = export_request([*chat_spans(), orphan]).SerializeToString()
        response = httpx.post(
            collector.url + "/api/public/otel/v1/traces",
            content=body,
            auth=("pk-lf-test", "sk-lf-test"),
            headers={"content-type": "application/x-protobuf"},
        )
        assert response.status_code == 200
    return directory


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env=ENV)
    return result.exit_code, result.output


def test_traces_list_shows_received_traces_when_data_dir_has_traces(data_dir: Path) -> None:
    """The table lists each trace with id, name, observation count, user, session and tags."""
    code, output = _run("traces", "list", "--data-dir", str(data_dir))
    assert code == 0, output
    row = next(line for line in output.splitlines() if TRACE_ID in line)
    for text in (TRACE_NAME, "end-user-42", "conv-1", "message", "chat", "2026-08-22T10:00:00"):
        assert text in row
    assert re.search(r"│\s+2\s+│", row)
    assert "(no root span)" in output
    assert "2 in total" in output


def test_traces_list_honours_limit(data_dir: Path) -> None:
    """--limit keeps the newest N traces."""
    code, output = _run("traces", "list", "--data-dir", str(data_dir), "--limit", "1")
    assert code == 0
    assert sum(TRACE_ID in line or "e" * 32 in line for line in output.splitlines()) == 1


def test_traces_show_draws_observation_tree(data_dir: Path) -> None:
    """The tree nests the generation under its chain, with model, tokens and cost."""
    code, output = _run("traces", "show", TRACE_ID, "--data-dir", str(data_dir))
    assert code == 0, output
    lines = output.splitlines()
    chain = next(i for i, line in enumerate(lines) if "[chain] message" in line)
    generation = lines[chain + 1]
    assert "[generation] llm" in generation
    assert generation.index("[generation]") > lines[chain].index("[chain]")
    for text in ("gpt-4o-mini", "total=876", "$0.000540", "1300 ms"):
        assert text in generation


def test_traces_show_fails_when_trace_is_unknown(data_dir: Path) -> None:
    """An unknown trace id exits 1 with a message."""
    code, output = _run("traces", "show", "f" * 32, "--data-dir", str(data_dir))
    assert code == 1
    assert "not found" in output


def test_traces_list_fails_when_data_dir_has_no_collector_data(tmp_path: Path) -> None:
    """Without a collector database the command says so and exits 1."""
    code, output = _run("traces", "list", "--data-dir", str(tmp_path / "empty"))
    assert code == 1
    assert "no collector data" in output


def test_collector_command_serves_and_prints_keys(tmp_path: Path) -> None:
    """`opstrail collector` prints its keys and URL, then answers health and projects."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opstrail",
            "collector",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "c"),
            "--keys",
            "pk-a:sk-a:proj-a",
            "--langfuse-version",
            "3.225.4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **ENV, "OPSTRAIL_DATA_DIR": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"URL:\s+(http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url, "".join(seen)
        assert "pk-a" in "".join(seen) and "sk-a" in "".join(seen)
        health = httpx.get(url + "/api/public/health", timeout=5).json()
        assert health == {"status": "OK", "version": "3.225.4"}
        projects = httpx.get(url + "/api/public/projects", auth=("pk-a", "sk-a"), timeout=5)
        assert projects.json()["data"][0]["id"] == "proj-a"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def test_collector_command_exits_2_when_keys_are_malformed() -> None:
    """A key pair without a secret is refused before serving."""
    code, output = _run("collector", "--keys", "only-public", "--port", "0")
    assert code == 2
    assert "public:secret" in output


def test_collector_handle_reads_same_data_as_cli(data_dir: Path) -> None:
    """The SQLite file written by one collector is read back by a new one (persistence)."""
    with running_collector(data_dir=data_dir) as collector:
        assert {t["id"] for t in collector.traces()} == {TRACE_ID, "e" * 32}
        assert json.dumps(collector.traces())  # JSON-ready

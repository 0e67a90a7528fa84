"""Helpers to run real `opstrail` processes (serve, worker) for multi-process tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from opstrail.cli.demo.server import free_port


def opstrail_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for an opstrail child process: no LANGFUSE_*, loopback-only hosts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OPSTRAIL_"))}
    env.update(
        OPSTRAIL_DATA_DIR=str(data_dir),
        OPSTRAIL_CONSOLE_TOKEN="test-console-token",
        OPSTRAIL_LOOPBACK_ONLY_HOSTS="true",
        OPSTRAIL_LOG_JSON="true",
        **extra,
    )
    return env


@contextmanager
def opstrail_process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m opstrail ARGS``; terminate it (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opstrail", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
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


@contextmanager
def serve(env: dict[str, str], log: Path, *extra: str) -> Iterator[str]:
    """`opstrail serve` on a free port; yields its base URL once /readyz answers."""
    port = free_port()
    with opstrail_process(["serve", "--port", str(port), *extra], env, log) as proc:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve never became ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url

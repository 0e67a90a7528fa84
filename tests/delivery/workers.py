"""Starting ``opstrail worker`` processes for tests (real processes, real signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from opstrail.settings import Settings


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a worker sharing ``settings``' database and key file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSTRAIL_", "LANGFUSE_"))}
    env.update(
        OPSTRAIL_DATA_DIR=str(settings.data_dir),
        OPSTRAIL_LOOPBACK_ONLY_HOSTS="true",
        OPSTRAIL_LOG_JSON="true",
    )
    if settings.database_url:
        env["OPSTRAIL_DATABASE_URL"] = settings.database_url
    return env


def start_worker(
    settings: Settings, *args: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m opstrail worker ARGS`` (stdout and stderr to ``log``)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "opstrail", "worker", *args],
        env=worker_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop_all(processes: Sequence[subprocess.Popen[bytes]], *, timeout: float = 20.0) -> list[int]:
    """SIGTERM every process, wait, SIGKILL what is left; returns the exit codes."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes

"""The reduced demo runs in `make test` and must pass end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opstrail.cli.main import build_app


@pytest.mark.timeout(240)
def test_demo_quick_delivers_every_trace_when_run_on_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`opstrail demo --quick` imports the examples, runs them over HTTP and exits 0 only
    when every trace arrived at the local collector and is valid."""
    monkeypatch.setenv("LANGFUSE_HOST", "http://192.0.2.1:9")  # must be ignored by the test run
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-ignored")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-ignored")
    result = CliRunner().invoke(
        build_app(),
        ["demo", "--quick", "--no-env-langfuse", "--data-dir", str(tmp_path / "demo")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "every trace was delivered and valid" in result.output
    assert "192.0.2.1" not in result.output
    assert os.environ["LANGFUSE_HOST"] == "http://192.0.2.1:9"

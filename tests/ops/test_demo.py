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


@pytest.mark.timeout(240)
def test_demo_sends_to_langfuse_from_environment_and_prints_trace_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LANGFUSE_PUBLIC_KEY/SECRET_KEY/HOST set (here: a separately started collector
    standing in for a real Langfuse), the demo sends there and prints each trace's URL."""
    from opstrail.collector.testing import running_collector

    keys = ("pk-lf-external", "sk-lf-external", "external-project")
    with running_collector(keys=(keys,)) as langfuse:
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", keys[0])
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", keys[1])
        monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
        result = CliRunner().invoke(
            build_app(), ["demo", "--quick", "--data-dir", str(tmp_path / "demo")],
            catch_exceptions=False,
        )
        received = langfuse.trace_ids()
    assert result.exit_code == 0, result.output
    assert f"Sending to Langfuse at {langfuse.url}" in result.output
    assert f"{langfuse.url}/project/external-project/traces/" in result.output
    assert len(received) >= 8


@pytest.mark.timeout(240)
def test_demo_delivers_valid_traces_to_old_langfuse_over_legacy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a Langfuse 2.x server (no OTLP) every trace goes over the legacy batch API,
    where tool, retriever, guardrail and chain observations travel as spans with their type
    in metadata; the demo still finds every trace complete and valid."""
    from opstrail.collector.testing import running_collector

    keys = ("pk-lf-old", "sk-lf-old", "old-project")
    with running_collector(keys=(keys,), langfuse_version="2.95.12") as langfuse:
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", keys[0])
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", keys[1])
        monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
        result = CliRunner().invoke(
            build_app(), ["demo", "--quick", "--data-dir", str(tmp_path / "demo")],
            catch_exceptions=False,
        )
        paths = {record.path for record in langfuse.request_log()}
    assert result.exit_code == 0, result.output
    assert "every trace was delivered and valid" in result.output
    assert "/api/public/ingestion" in paths
    assert "/api/public/otel/v1/traces" not in paths

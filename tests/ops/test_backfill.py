"""Backfill with `opstrail export` after Langfuse was down long enough for traces to be
dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from opstrail import ids
from opstrail.cli.demo.server import running_server
from opstrail.cli.main import build_app
from opstrail.collector.faults import FaultConfig
from opstrail.collector.testing import running_collector
from opstrail.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "apps"
KEYS = ("pk-lf-backfill", "sk-lf-backfill", "backfill")
TOKEN = "test-console-token"


def _poll(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_export_of_date_range_delivers_missing_traces_and_resends_no_acknowledged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traces dead-lettered during an outage reach Langfuse through `opstrail export
    --since --until`; traces Langfuse acknowledged before the outage are not sent again."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    settings = Settings(
        data_dir=tmp_path / "data",
        console_token=TOKEN,
        loopback_only_hosts=True,
        model_fallback="offline",
        max_row_age_days=6 / 86400,  # six seconds: an outage longer than that dead-letters
        dispatch_poll_interval=0.05,
    )
    with running_collector(keys=(KEYS,)) as collector, running_server(settings) as url:
        console = httpx.Client(
            base_url=f"{url}/console/api", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        yaml_content = (EXAMPLES / "clock_calculator_agent.yml").read_text()
        app_id = console.post(
            "/apps/imports", json={"mode": "yaml-content", "yaml_content": yaml_content}
        ).json()["app_id"]
        token = console.post(f"/apps/{app_id}/api-keys").json()["token"]
        saved = console.post(f"/apps/{app_id}/trace-config", json={
            "tracing_provider": "langfuse",
            "tracing_config": {"public_key": KEYS[0], "secret_key": KEYS[1], "host": collector.url},
        })
        assert saved.status_code == 200, saved.text
        console.post(f"/apps/{app_id}/trace", json={"enabled": True, "tracing_provider": "langfuse"})
        service = httpx.Client(
            base_url=f"{url}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        conversation_id = ""

        def send(query: str) -> str:
            nonlocal conversation_id
            answer = service.post("/chat-messages", json={
                "inputs": {}, "query": query, "response_mode": "blocking", "user": "u-backfill",
                "conversation_id": conversation_id,
            })
            assert answer.status_code == 200, answer.text
            conversation_id = answer.json()["conversation_id"]
            return ids.trace_id(answer.json()["message_id"])

        before = {send(f"what is {n} * 7?") for n in range(3)}
        assert _poll(lambda: before <= set(collector.trace_ids()), 60), "first traces never arrived"

        collector.set_faults(FaultConfig(error_rate=1.0, error_status=503))  # Langfuse is down
        during = {send(f"what is {n} + 7?") for n in range(3)}

        def dead() -> int:
            return int(console.get(f"/apps/{app_id}/trace-status").json().get("dead") or 0)

        assert _poll(lambda: dead() >= 3, 90), "traces were not dead-lettered during the outage"
        assert not during & set(collector.trace_ids())
        collector.set_faults(FaultConfig())  # Langfuse is back
        until = datetime.now(UTC) + timedelta(seconds=1)

        for name, value in (("OPSTRAIL_DATA_DIR", str(settings.data_dir)),
                            ("OPSTRAIL_CONSOLE_TOKEN", TOKEN),
                            ("OPSTRAIL_LOOPBACK_ONLY_HOSTS", "true"),
                            ("OPSTRAIL_MAX_ROW_AGE_DAYS", str(6 / 86400))):
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(build_app(), [
            "export", "--app", app_id, "--since", since.isoformat(), "--until", until.isoformat(),
        ], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "3 trace(s) queued" in result.output, result.output
        assert _poll(lambda: during <= set(collector.trace_ids()), 60), "backfill did not deliver"
        assert collector.duplicates() == [], "an acknowledged trace was sent again"

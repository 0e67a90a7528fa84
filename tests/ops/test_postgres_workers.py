"""`opstrail serve` and two `opstrail worker` processes on one PostgreSQL outbox."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ops.processes import opstrail_env, opstrail_process, serve
from opstrail import ids
from opstrail.collector.testing import running_collector

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "apps"
MESSAGES = 200


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_two_workers_deliver_200_messages_once_each_when_serve_runs_without_dispatcher(
    tmp_path: Path, postgres_url: str
) -> None:
    """Traces of 200 messages recorded by `serve --no-dispatcher` arrive exactly once each
    when two `opstrail worker` processes share the PostgreSQL outbox."""
    env = opstrail_env(tmp_path / "data", OPSTRAIL_DATABASE_URL=postgres_url)
    keys = ("pk-lf-scale", "sk-lf-scale", "scale")
    with running_collector(keys=(keys,)) as collector, serve(
        env, tmp_path / "serve.log", "--no-dispatcher"
    ) as url:
        console = httpx.Client(
            base_url=f"{url}/console/api",
            headers={"Authorization": "Bearer test-console-token"},
            timeout=60,
        )
        yaml_content = (EXAMPLES / "clock_calculator_agent.yml").read_text()
        app_id = console.post(
            "/apps/imports", json={"mode": "yaml-content", "yaml_content": yaml_content}
        ).json()["app_id"]
        token = console.post(f"/apps/{app_id}/api-keys").json()["token"]
        saved = console.post(
            f"/apps/{app_id}/trace-config",
            json={
                "tracing_provider": "langfuse",
                "tracing_config": {"public_key": keys[0], "secret_key": keys[1], "host": collector.url},
            },
        )
        assert saved.status_code == 200, saved.text
        console.post(f"/apps/{app_id}/trace", json={"enabled": True, "tracing_provider": "langfuse"})

        service = httpx.Client(
            base_url=f"{url}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        conversation_id = ""
        message_ids: list[str] = []
        for n in range(MESSAGES):
            body = {"inputs": {}, "query": f"what is {n} + {n}?", "response_mode": "blocking",
                    "user": "scale-user", "conversation_id": conversation_id}
            answer = service.post("/chat-messages", json=body)
            assert answer.status_code == 200, answer.text
            conversation_id = answer.json()["conversation_id"]
            message_ids.append(answer.json()["message_id"])
        expected = {ids.trace_id(m) for m in message_ids}

        with opstrail_process(["worker"], env, tmp_path / "w1.log"), opstrail_process(
            ["worker"], env, tmp_path / "w2.log"
        ):
            arrived = collector.wait_for(
                lambda: expected <= {t["id"] for t in collector.traces()}, timeout=240
            )
        assert arrived, f"missing traces: {len(expected - {t['id'] for t in collector.traces()})}"
        assert collector.duplicates() == [], "a span was received more than once"

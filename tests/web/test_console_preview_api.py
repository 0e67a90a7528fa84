"""The console JSON endpoints behind the preview panel, over real HTTP (no browser)."""

from __future__ import annotations

import json
from typing import Any

from opstrail import ids

from .conftest import ConsoleServer

WORKFLOW_APP = "workflow_audit_workpaper_kb_code.yml"
WORKFLOW_INPUTS = {
    "project_name": "Annual audit",
    "project_event": "Expense claims",
    "audit_finding": "Check duplicate claims.",
}


def _events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


def test_workflow_draft_run_streams_node_events_when_streaming(
    console_server: ConsoleServer,
) -> None:
    """A streaming console workflow run answers SSE: workflow_started, node events with
    statuses, workflow_finished; the run is stored as triggered from debugging."""
    app_id = console_server.import_app(WORKFLOW_APP)
    with console_server.api() as client:
        answer = client.post(
            f"/console/api/apps/{app_id}/workflows/draft/run",
            json={"inputs": WORKFLOW_INPUTS, "response_mode": "streaming"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = _events(answer.text)
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    finished_nodes = [e["data"] for e in events if e["event"] == "node_finished"]
    assert len(finished_nodes) >= 3
    assert all(n["status"] == "succeeded" for n in finished_nodes)
    assert names.count("node_started") == len(finished_nodes)
    assert events[-1]["data"]["status"] == "succeeded"


def test_workflow_draft_run_refuses_when_app_is_not_a_workflow(
    console_server: ConsoleServer,
) -> None:
    """A chat app has no workflow to run: 400 app_unavailable, nothing run."""
    app_id = console_server.import_app("chat_food_calorie_planner.yml")
    with console_server.api() as client:
        answer = client.post(
            f"/console/api/apps/{app_id}/workflows/draft/run", json={"inputs": {}}
        )
    assert answer.status_code == 400
    assert answer.json()["code"] == "app_unavailable"


def test_workflow_draft_run_refuses_when_required_input_missing(
    console_server: ConsoleServer,
) -> None:
    """A missing required start variable is a 400 with a clear message."""
    app_id = console_server.import_app(WORKFLOW_APP)
    with console_server.api() as client:
        answer = client.post(
            f"/console/api/apps/{app_id}/workflows/draft/run",
            json={"inputs": {}, "response_mode": "blocking"},
        )
    assert answer.status_code == 400
    assert "项目名称" in answer.json()["message"]


def test_delivery_reports_failed_when_tracing_not_configured(
    console_server: ConsoleServer,
) -> None:
    """With tracing off, a console run's trace is reported failed with the reason."""
    app_id = console_server.import_app(WORKFLOW_APP)
    with console_server.api() as client:
        run = client.post(
            f"/console/api/apps/{app_id}/workflows/draft/run",
            json={"inputs": WORKFLOW_INPUTS, "response_mode": "blocking"},
        )
        assert run.status_code == 200, run.text
        run_id = run.json()["workflow_run_id"]
        state = client.get(f"/console/api/apps/{app_id}/workflow-runs/{run_id}/delivery")
    assert state.status_code == 200
    body = state.json()
    assert body["trace_id"] == ids.trace_id(run_id)
    assert body["state"] == "failed"
    assert "not configured" in body["reason"]
    assert body["trace_url"] is None


def test_delivery_answers_404_when_message_unknown(console_server: ConsoleServer) -> None:
    """An unknown message or app is a 404, never a guessed state."""
    app_id = console_server.import_app("chat_food_calorie_planner.yml")
    with console_server.api() as client:
        unknown_message = client.get(f"/console/api/apps/{app_id}/messages/nope/delivery")
        unknown_app = client.get("/console/api/apps/nope/workflow-runs/x/delivery")
    assert unknown_message.status_code == 404
    assert unknown_app.status_code == 404


def test_recent_traces_lists_latest_first_when_runs_recorded(
    console_server: ConsoleServer,
) -> None:
    """Recent traces are the app's latest trace records, newest first, without links while
    undelivered."""
    app_id = console_server.import_app(WORKFLOW_APP)
    run_ids = []
    with console_server.api() as client:
        for _ in range(2):
            run = client.post(
                f"/console/api/apps/{app_id}/workflows/draft/run",
                json={"inputs": WORKFLOW_INPUTS, "response_mode": "blocking"},
            )
            run_ids.append(run.json()["workflow_run_id"])
        recent = client.get(f"/console/api/apps/{app_id}/recent-traces", params={"limit": 5})
        too_many = client.get(f"/console/api/apps/{app_id}/recent-traces", params={"limit": 500})
    assert recent.status_code == 200
    data = recent.json()["data"]
    assert [d["trace_id"] for d in data] == [ids.trace_id(r) for r in reversed(run_ids)]
    assert all(d["kind"] == "workflow" and d["url"] is None for d in data)
    assert too_many.status_code == 400

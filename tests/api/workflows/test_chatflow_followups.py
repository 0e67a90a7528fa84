"""A chatflow turn's own follow-up model calls: suggested questions and the title."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from opstrail import ids
from opstrail.delivery import codec
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.tracing.build import build_trace
from opstrail.tracing.info import GenerateNameTraceInfo, WorkflowTraceInfo

from .conftest import install

CHATFLOW = Path(__file__).resolve().parents[3] / "examples" / "apps" / "memory_chatflow.yml"


def _records(client: TestClient) -> list[object]:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
        return [codec.decode(r.kind, r.payload) for r in rows if r.payload]


def test_chatflow_turn_traces_its_suggested_questions_and_names_the_conversation(
    client: TestClient,
) -> None:
    """With suggested questions on, a chatflow turn generates them right after the answer:
    they are returned by /suggested and sit in that run's trace as a generation with the
    suggestion call's own tokens; the first turn also gets the conversation's title trace."""
    _app_id, headers = install(client, CHATFLOW.read_text(encoding="utf-8"))
    answer = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {}, "query": "My favourite colour is teal.", "response_mode": "blocking",
        "user": "u-1",
    })
    assert answer.status_code == 200, answer.text
    body = answer.json()
    suggested = client.get(f"/v1/messages/{body['message_id']}/suggested",
                           params={"user": "u-1"}, headers=headers)
    assert suggested.status_code == 200, suggested.text
    questions = suggested.json()["data"]
    assert len(questions) == 3

    records = _records(client)
    run = next(r for r in records if isinstance(r, WorkflowTraceInfo))
    assert run.workflow_run_id == body["workflow_run_id"]
    assert run.suggested_question is not None
    assert list(run.suggested_question.suggested_question) == questions
    trace = build_trace(run)
    generation = next(o for o in trace.observations if o.name == "suggested_question")
    assert generation.usage is not None and generation.usage.total > 0
    assert generation.parent_id == trace.root.id  # type: ignore[union-attr]
    assert "suggested_question" in trace.tags

    titles = [r for r in records if isinstance(r, GenerateNameTraceInfo)]
    assert [t.conversation_id for t in titles] == [body["conversation_id"]]
    assert build_trace(titles[0]).id == ids.trace_id(ids.seed_conversation_root(body["conversation_id"]))

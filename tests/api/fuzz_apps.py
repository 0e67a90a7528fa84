"""Apps with stored runs for the bad-input tests, and what is stored, as plain values.

``set_up_apps`` imports one chat, completion, workflow and chatflow app, runs each once as
``FUZZ_USER`` (and the chat app once as the console), and creates a dataset; the ids are kept
in a ``Fixture``. ``snapshot`` and ``row_counts`` read what is stored, so a test can show that
a refused request lost or changed nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opstrail.storage.tables.apps import App, AppApiKey
from opstrail.storage.tables.chat import Conversation, EndUser, Message, MessageFeedback
from opstrail.storage.tables.datasets import Dataset
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.storage.tables.workflows import NodeExecutionRow, WorkflowRun

CONSOLE = {"Authorization": "Bearer test-console-token"}
FUZZ_USER = "fuzz-user"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "apps"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dsl"
COUNTED = (App, AppApiKey, EndUser, Conversation, Message, MessageFeedback, WorkflowRun,
           NodeExecutionRow, OutboxRow, Dataset)

# A small workflow whose start form has every kind of input the checks handle: text, a
# select, a number and a paragraph (so wrong types and values reach validation).
WORKFLOW_YAML = """\
app: {name: Fuzz workflow, mode: workflow}
kind: app
version: 0.6.0
workflow:
  conversation_variables: []
  environment_variables: []
  features: {}
  graph:
    edges:
    - {id: e1, source: start, target: shape, sourceHandle: source, targetHandle: target}
    - {id: e2, source: shape, target: end, sourceHandle: source, targetHandle: target}
    nodes:
    - id: start
      data:
        title: Start
        type: start
        variables:
        - {variable: topic, label: Topic, type: text-input, required: true, max_length: 64}
        - {variable: tone, label: Tone, type: select, required: false, options: [calm, loud]}
        - {variable: count, label: Count, type: number, required: false}
        - {variable: notes, label: Notes, type: paragraph, required: false}
    - id: shape
      data:
        title: Shape
        type: template-transform
        template: '{{ topic }} ({{ tone }}) x{{ count }}'
        variables:
        - {variable: topic, value_selector: [start, topic]}
        - {variable: tone, value_selector: [start, tone]}
        - {variable: count, value_selector: [start, count]}
    - id: end
      data:
        title: End
        type: end
        outputs:
        - {variable: text, value_selector: [shape, output]}
"""


@dataclass
class Fixture:
    """The apps, keys and stored rows (ids by kind, per app mode) requests can aim at."""

    app_ids: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    api_rows: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    console_rows: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, mode: str, *, console: bool = False, **found: str | None) -> None:
        """Remember the ids of a run of ``mode`` (``message_id=..., task_id=...``)."""
        rows = (self.console_rows if console else self.api_rows).setdefault(mode, {})
        for kind, value in found.items():
            if value:
                rows.setdefault(kind, []).append(value)

    def all(self, kind: str) -> list[str]:
        """Every stored id of ``kind``, whoever made it."""
        return [value for rows in (*self.api_rows.values(), *self.console_rows.values())
                for value in rows.get(kind, [])]


def import_app(client: TestClient, yaml_content: str) -> tuple[str, str]:
    answer = client.post("/console/api/apps/imports",
                         json={"mode": "yaml-content", "yaml_content": yaml_content})
    assert answer.status_code == 200, answer.text
    app_id = answer.json()["app_id"]
    key = client.post(f"/console/api/apps/{app_id}/api-keys")
    assert key.status_code == 201, key.text
    return app_id, key.json()["token"]


def set_up_apps(client: TestClient) -> Fixture:
    """Four apps, each with one stored run of FUZZ_USER, and one dataset."""
    fx = Fixture()
    sources = {
        "chat": (EXAMPLES / "handbook_chat.yml").read_text(),
        "completion": (FIXTURES / "completion_sql_creator.yml").read_text(),
        "workflow": WORKFLOW_YAML,
        "advanced-chat": (EXAMPLES / "memory_chatflow.yml").read_text(),
    }
    for mode, yaml_content in sources.items():
        fx.app_ids[mode], fx.keys[mode] = import_app(client, yaml_content)

    chat = client.post("/v1/chat-messages", headers=bearer(fx, "chat"), json={
        "inputs": {}, "query": "How many holidays?", "user": FUZZ_USER,
        "response_mode": "blocking"})
    assert chat.status_code == 200, chat.text
    completion = client.post("/v1/completion-messages", headers=bearer(fx, "completion"), json={
        "inputs": {"A": "MySQL", "default_input": "users older than 30"}, "user": FUZZ_USER,
        "response_mode": "blocking"})
    assert completion.status_code == 200, completion.text
    workflow = client.post("/v1/workflows/run", headers=bearer(fx, "workflow"), json={
        "inputs": {"topic": "tea", "tone": "calm", "count": 2}, "user": FUZZ_USER,
        "response_mode": "blocking"})
    assert workflow.status_code == 200, workflow.text
    chatflow = client.post("/v1/chat-messages", headers=bearer(fx, "advanced-chat"), json={
        "inputs": {}, "query": "Remember: I like tea.", "user": FUZZ_USER,
        "response_mode": "blocking"})
    assert chatflow.status_code == 200, chatflow.text
    for mode, answer in (("chat", chat.json()), ("completion", completion.json()),
                         ("advanced-chat", chatflow.json()), ("workflow", workflow.json())):
        fx.add(mode, message_id=answer.get("message_id"), task_id=answer["task_id"],
               conversation_id=answer.get("conversation_id"),
               workflow_run_id=answer.get("workflow_run_id"))
    console_chat = client.post(f"/console/api/apps/{fx.app_ids['chat']}/chat-messages", json={
        "inputs": {}, "query": "Debug holidays?", "response_mode": "blocking"})
    assert console_chat.status_code == 200, console_chat.text
    fx.add("chat", console=True, message_id=console_chat.json()["message_id"],
           conversation_id=console_chat.json()["conversation_id"])
    dataset = client.post("/console/api/datasets", json={
        "name": "Fuzz handbook", "documents": [{"name": "a.txt", "text": "Holidays: 25 days."}]})
    assert dataset.status_code == 201, dataset.text
    return fx


def snapshot(app: FastAPI, fx: Fixture) -> dict[str, Any]:
    """What the set-up stored, as plain values (to compare after fuzzing)."""
    message_ids = fx.all("message_id")
    with app.state.session_factory() as session:
        messages = {m.id: (m.query, m.answer, m.status, m.conversation_id)
                    for m in session.scalars(select(Message).where(Message.id.in_(message_ids)))}
        runs = {r.id: (r.status, json.dumps(r.outputs, sort_keys=True))
                for r in session.scalars(
                    select(WorkflowRun).where(WorkflowRun.id.in_(fx.all("workflow_run_id"))))}
        conversations = set(session.scalars(
            select(Conversation.id).where(Conversation.id.in_(fx.all("conversation_id")))))
        apps = {a.id: a.dsl for a in session.scalars(
            select(App).where(App.id.in_(list(fx.app_ids.values()))))}
    return {"messages": messages, "runs": runs, "conversations": conversations, "apps": apps}


def row_counts(app: FastAPI) -> dict[str, int]:
    """How many rows each table a request could write holds."""
    with app.state.session_factory() as session:
        return {table.__tablename__: int(session.scalar(
            select(func.count()).select_from(table)) or 0) for table in COUNTED}


def bearer(fx: Fixture, mode: str) -> dict[str, str]:
    """The service API header of the fixture's ``mode`` app."""
    return {"Authorization": f"Bearer {fx.keys[mode]}"}

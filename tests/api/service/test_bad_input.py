"""Bad input gets a clear 4xx with Dify's codes, never a 5xx, and nothing stored is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from api.service.conftest import CONSOLE, chat_yaml
from api.service.helpers import sse_events
from opstrail.api.app import create_app
from opstrail.delivery.codec import decode
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry
from opstrail.settings import Settings
from opstrail.storage.tables.apps import AppApiKey
from opstrail.storage.tables.chat import Message
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.tracing.info import FromSource, MessageTraceInfo

COMPLETION_FORM = (
    "  - select:\n      label: Lang\n      variable: lang\n      required: true\n"
    "      options: [SQL, Python]\n"
    "  - paragraph:\n      label: Ask\n      variable: ask\n      required: true\n      max_length: 50\n"
)


@pytest.fixture(name="client")
def _client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", console_token="test-console-token",
                        loopback_only_hosts=True, model_fallback="offline",
                        embedded_dispatcher=False, log_json=False)
    with TestClient(create_app(settings)) as client:
        yield client


def _app(client: TestClient, yaml_content: str) -> dict[str, str]:
    app_id = client.post("/console/api/apps/imports", headers=CONSOLE,
                         json={"mode": "yaml-content", "yaml_content": yaml_content}).json()["app_id"]
    token = client.post(f"/console/api/apps/{app_id}/api-keys", headers=CONSOLE).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _messages(client: TestClient) -> int:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def test_unknown_or_missing_app_key_is_401(client: TestClient) -> None:
    """A wrong key, a console token or no header is 401 unauthorized."""
    body = {"inputs": {}, "query": "hi", "user": "u", "response_mode": "blocking"}
    for headers in ({"Authorization": "Bearer app-nope"}, CONSOLE, {}):
        answer = client.post("/v1/chat-messages", headers=headers, json=body)
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"


def test_api_key_is_stored_only_as_its_hash(client: TestClient) -> None:
    """The created key works, and the database holds only its SHA-256."""
    headers = _app(client, chat_yaml())
    token = headers["Authorization"].removeprefix("Bearer ")
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        stored = session.scalars(select(AppApiKey)).all()
    assert token not in {k.token_sha256 for k in stored}
    assert all(len(k.token_sha256) == 64 for k in stored)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"lang": "SQL"}, "ask is required in input form"),
        ({"lang": "Rust", "ask": "x"}, "lang in input form must be one of the following"),
        ({"lang": "SQL", "ask": "x" * 51}, "ask in input form must be less than 50 characters"),
    ],
)
def test_bad_form_inputs_are_400_invalid_param_and_store_nothing(
    client: TestClient, inputs: dict[str, str], message: str
) -> None:
    """Form validation refuses with invalid_param naming the variable; no message is stored."""
    headers = _app(client, chat_yaml(mode="completion", pre_prompt="Write {{ask}} in {{lang}}",
                                     form=COMPLETION_FORM))
    answer = client.post("/v1/completion-messages", headers=headers, json={
        "inputs": inputs, "user": "u", "response_mode": "blocking"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_param"
    assert message in answer.json()["message"]
    assert _messages(client) == 0


def test_completion_app_answers_from_form(client: TestClient) -> None:
    """A valid completion request answers blocking with mode completion and no conversation."""
    headers = _app(client, chat_yaml(mode="completion", pre_prompt="Write {{ask}} in {{lang}}",
                                     form=COMPLETION_FORM))
    answer = client.post("/v1/completion-messages", headers=headers, json={
        "inputs": {"lang": "SQL", "ask": "a query for users"}, "user": "u", "response_mode": "blocking"})
    assert answer.status_code == 200
    assert answer.json()["mode"] == "completion" and "conversation_id" not in answer.json()
    assert "Write a query for users in SQL" in answer.json()["answer"]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ('{"query": "hi", "user": ', "json_invalid"),
        ('{"query": "hi", "user": "u", "response_mode": "sometimes"}', "response_mode"),
        ('{"query": ["not", "text"], "user": "u"}', "query"),
        ('[1, 2]', "body"),
    ],
)
def test_malformed_body_is_400_with_a_clear_message(client: TestClient, payload: str, where: str) -> None:
    """Broken JSON or wrong field types give 400 invalid_param naming the problem."""
    headers = _app(client, chat_yaml())
    answer = client.post("/v1/chat-messages", headers={**headers, "Content-Type": "application/json"},
                         content=payload)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_param"
    assert answer.json()["message"]


def test_missing_query_user_or_bad_trace_id_are_400(client: TestClient) -> None:
    """No query, no user, or an X-Trace-Id breaking the id rule: 400, nothing stored."""
    headers = _app(client, chat_yaml())
    base = {"inputs": {"team": "a"}, "response_mode": "blocking"}
    assert client.post("/v1/chat-messages", headers=headers,
                       json={**base, "query": " ", "user": "u"}).json()["code"] == "invalid_param"
    assert client.post("/v1/chat-messages", headers=headers,
                       json={**base, "query": "hi"}).json()["code"] == "invalid_param"
    bad_trace = client.post("/v1/chat-messages", headers={**headers, "X-Trace-Id": "has space"},
                            json={**base, "query": "hi", "user": "u"})
    assert bad_trace.status_code == 400 and bad_trace.json()["code"] == "invalid_id"
    body_trace = client.post("/v1/chat-messages", headers=headers,
                             json={**base, "query": "hi", "user": "u", "trace_id": "x" * 129})
    assert body_trace.status_code == 400
    assert _messages(client) == 0


def test_other_users_conversation_is_404(client: TestClient) -> None:
    """Continuing, listing or renaming another user's conversation answers 404 not_found."""
    headers = _app(client, chat_yaml())
    first = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {"team": "a"}, "query": "hi", "user": "owner", "response_mode": "blocking"}).json()
    conversation_id = first["conversation_id"]
    intruder = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {}, "query": "hi", "user": "intruder", "conversation_id": conversation_id,
        "response_mode": "blocking"})
    assert intruder.status_code == 404 and intruder.json()["code"] == "not_found"
    assert client.get("/v1/messages", headers=headers, params={
        "user": "intruder", "conversation_id": conversation_id}).status_code == 404
    assert client.post(f"/v1/conversations/{conversation_id}/name", headers=headers,
                       json={"name": "mine", "user": "intruder"}).status_code == 404
    assert client.post(f"/v1/messages/{first['message_id']}/feedbacks", headers=headers,
                       json={"rating": "like", "user": "intruder"}).status_code == 404
    unknown = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {}, "query": "hi", "user": "owner", "conversation_id": "nope",
        "response_mode": "blocking"})
    assert unknown.status_code == 404


def test_conversation_keeps_memory_and_its_inputs(client: TestClient) -> None:
    """A second message of a conversation sends the history and reuses the first inputs."""
    headers = _app(client, chat_yaml())
    first = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {"team": "blue"}, "query": "first question", "user": "u",
        "response_mode": "blocking"}).json()
    second = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {}, "query": "second question", "user": "u", "response_mode": "streaming",
        "conversation_id": first["conversation_id"]})
    events = sse_events(second.text)
    assert events[-1]["event"] == "message_end"
    history = client.get("/v1/messages", headers=headers, params={
        "user": "u", "conversation_id": first["conversation_id"]}).json()["data"]
    assert [m["query"] for m in history] == ["first question", "second question"]
    assert history[1]["inputs"] == {"team": "blue"}
    assert history[1]["answer"] == "".join(e["answer"] for e in events if e["event"] == "message")


def test_unconfigured_provider_without_fallback_is_provider_not_initialize(tmp_path: Path) -> None:
    """Without a model endpoint or fallback the answer is 400 provider_not_initialize, and the
    message is kept with status error."""
    settings = Settings(data_dir=tmp_path / "d", console_token="test-console-token",
                        embedded_dispatcher=False, log_json=False)
    with TestClient(create_app(settings)) as client:
        client.app.state.model_registry = ModelRegistry(ModelOptions())
        headers = _app(client, chat_yaml(provider="azure_openai"))
        answer = client.post("/v1/chat-messages", headers=headers, json={
            "inputs": {"team": "a"}, "query": "hi", "user": "u", "response_mode": "blocking"})
        assert answer.status_code == 400
        assert answer.json()["code"] == "provider_not_initialize"
        with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
            stored = session.scalars(select(Message)).one()
        assert stored.status == "error" and "azure_openai" in (stored.error or "")


def test_stop_answers_success_and_stops_only_own_task(client: TestClient) -> None:
    """Stop answers success (as Dify) for any task; a missing user is 400."""
    headers = _app(client, chat_yaml())
    assert client.post("/v1/chat-messages/some-task/stop", headers=headers,
                       json={"user": "u"}).json() == {"result": "success"}
    assert client.post("/v1/chat-messages/some-task/stop", headers=headers, json={}).status_code == 400


def test_console_run_records_console_source(client: TestClient) -> None:
    """The console runs the same app as its account: from_source console."""
    app_id = client.post("/console/api/apps/imports", headers=CONSOLE, json={
        "mode": "yaml-content", "yaml_content": chat_yaml()}).json()["app_id"]
    answer = client.post(f"/console/api/apps/{app_id}/chat-messages", headers=CONSOLE, json={
        "inputs": {"team": "a"}, "query": "debug me", "response_mode": "blocking"})
    assert answer.status_code == 200, answer.text
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        stored = session.scalars(select(Message)).one()
        rows = session.scalars(select(OutboxRow).where(OutboxRow.kind == "message").options(
            selectinload(OutboxRow.payload_row)
        )).all()
    assert stored.from_source == "console" and stored.from_account_id is not None
    assert stored.from_end_user_id is None
    infos = [decode(row.kind, row.payload or "") for row in rows]
    assert len(infos) == 1 and isinstance(infos[0], MessageTraceInfo)
    assert infos[0].message_id == stored.id
    assert infos[0].context.from_source is FromSource.CONSOLE
    assert infos[0].context.environment == "debug"
    assert infos[0].context.from_account_id == stored.from_account_id


def test_parameters_show_opening_statement_and_form(client: TestClient) -> None:
    """GET /parameters returns the opening statement and the input form (Dify's shape)."""
    headers = _app(client, chat_yaml())
    answer = client.get("/v1/parameters", headers=headers).json()
    assert answer["opening_statement"] == "Hello!"
    assert answer["user_input_form"] == [{"text-input": {
        "label": "Team", "variable": "team", "required": True, "default": "", "max_length": 20}}]


def test_files_are_ignored_with_a_warning(client: TestClient) -> None:
    """Files in the body do not fail the message; the answer carries a warning."""
    headers = _app(client, chat_yaml())
    answer = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {"team": "a"}, "query": "see picture", "user": "u", "response_mode": "blocking",
        "files": [{"type": "image", "transfer_method": "remote_url", "url": "http://127.0.0.1/x.png"}]})
    assert answer.status_code == 200
    assert answer.json()["metadata"]["warnings"] == ["files are not supported; 1 file(s) were ignored"]

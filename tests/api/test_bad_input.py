"""Bad input gets a clear error and loses nothing; the server never answers 5xx for it.

Every test runs on SQLite and on PostgreSQL (which refuses what SQLite keeps silently: NUL
characters, NaN in JSON, over-long names). Each refused request is checked three ways: a 4xx,
a JSON body ``{"code", "message"}``, and every table a request could write holding the same
rows as before (the runs stored at set-up unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.responses import PlainTextResponse

from api.fuzz_apps import (
    CONSOLE,
    EXAMPLES,
    FUZZ_USER,
    WORKFLOW_YAML,
    Fixture,
    bearer,
    row_counts,
    set_up_apps,
    snapshot,
)
from api.service.helpers import sse_events
from opstrail.api.app import create_app
from opstrail.api.strict_input import StrictInputMiddleware
from opstrail.settings import Settings
from opstrail.storage.tables.chat import Message
from opstrail.storage.tables.workflows import NodeExecutionRow, WorkflowRun

Served = tuple[FastAPI, TestClient, Fixture]


@pytest.fixture(name="served", scope="module", params=["sqlite", "postgres"])
def _served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Served]:
    database = {"database_url": request.getfixturevalue("postgres_url")} if (
        request.param == "postgres") else {}
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("bad-input") / "data",
        console_token="test-console-token",
        secret_key=None,
        loopback_only_hosts=True,
        model_fallback="offline",
        embedded_dispatcher=False,
        log_json=False,
        **database,
    )
    app = create_app(settings)
    with TestClient(app, headers=CONSOLE) as client:
        yield app, client, set_up_apps(client)


@contextmanager
def _nothing_changes(served: Served) -> Iterator[None]:
    """Asserts that no table gained or lost a row and the set-up runs are unchanged."""
    app, _client, fx = served
    counts, stored = row_counts(app), snapshot(app, fx)
    yield
    assert row_counts(app) == counts
    assert snapshot(app, fx) == stored


def _refused(answer: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The JSON body of a refusal with ``status`` (and ``code``), checked for its shape."""
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"].startswith("application/json"), answer.text[:300]
    body: dict[str, Any] = answer.json()
    assert isinstance(body.get("code"), str) and body["code"]
    assert isinstance(body.get("message"), str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


def _chat_body(**extra: Any) -> dict[str, Any]:
    return {"inputs": {}, "query": "How many holidays?", "user": FUZZ_USER,
            "response_mode": "blocking", **extra}


@pytest.mark.parametrize(
    "payload",
    [
        b'{"query": "hi", "user": ',
        b'{"query": "hi",, "user": "u"}',
        b"[1, 2]",
        b"null",
        b'"just a string"',
        b"",
        b'{"query": "\xff\xfe", "user": "u"}',
        b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"inputs": {"n": 1' + b"0" * 5000 + b"}}",
    ],
    ids=["truncated", "double-comma", "array", "null", "string", "empty", "not-utf8",
         "deep-nesting", "huge-integer"],
)
def test_chat_messages_refuses_malformed_json_when_posted(served: Served, payload: bytes) -> None:
    """Broken, non-object or pathological JSON bodies are 400 invalid_param, nothing stored."""
    _app, client, fx = served
    with _nothing_changes(served):
        answer = client.post("/v1/chat-messages", content=payload,
                             headers={**bearer(fx, "chat"), "Content-Type": "application/json"})
        _refused(answer, 400, "invalid_param")


@pytest.mark.parametrize(
    ("path", "mode"),
    [("/v1/chat-messages", "chat"), ("/v1/completion-messages", "completion"),
     ("/v1/workflows/run", "workflow"), ("/v1/chat-messages", "advanced-chat")],
)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_run_endpoints_refuse_wrong_content_type_when_posted(
    served: Served, path: str, mode: str, content_type: str | None
) -> None:
    """A body that is not JSON (or no content type at all) is 400, nothing stored."""
    _app, client, fx = served
    headers = bearer(fx, mode)
    if content_type is not None:
        headers["Content-Type"] = content_type
    with _nothing_changes(served):
        answer = client.post(path, headers=headers, content=b"query=hi&user=u")
        _refused(answer, 400, "invalid_param")


def test_huge_bodies_are_refused_with_a_clear_message(served: Served) -> None:
    """A 5 MB query, a 5 MB form value and an over-long name are 400 naming the field."""
    _app, client, fx = served
    huge = "a" * 5_000_000
    with _nothing_changes(served):
        body = _refused(client.post("/v1/chat-messages", headers=bearer(fx, "chat"),
                                    json=_chat_body(query=huge)), 400, "invalid_param")
        assert body["message"].startswith("query:")
        body = _refused(client.post("/v1/workflows/run", headers=bearer(fx, "workflow"), json={
            "inputs": {"topic": huge}, "user": FUZZ_USER, "response_mode": "blocking"}),
            400, "invalid_param")
        assert "topic" in body["message"]
        conversation_id = fx.api_rows["chat"]["conversation_id"][0]
        body = _refused(client.post(f"/v1/conversations/{conversation_id}/name",
                                    headers=bearer(fx, "chat"),
                                    json={"name": "n" * 300, "user": FUZZ_USER}), 400)
        assert body["message"].startswith("name:")


def test_json_body_over_the_cap_is_413() -> None:
    """A JSON body larger than the middleware's cap is 413 payload_too_large, before any
    route runs; a body within the cap reaches the route unchanged."""
    seen: list[bytes] = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message["body"])
        await PlainTextResponse("ok")(scope, receive, send)

    # No lifespan (no ``with``): the echo app only speaks HTTP.
    client = TestClient(StrictInputMiddleware(echo, max_json_bytes=1_000))
    too_big = client.post("/x", json={"query": "a" * 2_000})
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"
    fits = client.post("/x", json={"query": "a" * 100})
    assert fits.status_code == 200
    assert seen == [b'{"query":"' + b"a" * 100 + b'"}']


@pytest.mark.parametrize(
    "text",
    ["emoji 😀 and 𝄞", "日本語の質問です", "\u202eright-to-left\u202c", "zero\u200bwidth\ufeff",
     "e\u0301 combining", "tab\tnew\nline\r\n", "{{#sys.query#}} {{ 7 * 7 }}",
     "' OR 1=1; --"],
    ids=["astral", "cjk", "rtl", "zero-width", "combining", "control", "template", "sql"],
)
def test_unicode_edge_cases_are_stored_and_read_back_verbatim(served: Served, text: str) -> None:
    """Odd but valid text in query, user and name round-trips exactly: nothing is mangled."""
    _app, client, fx = served
    user = f"user {text}"[:255]
    answer = client.post("/v1/chat-messages", headers=bearer(fx, "chat"),
                         json=_chat_body(query=text, user=user))
    assert answer.status_code == 200, answer.text
    conversation_id = answer.json()["conversation_id"]
    history = client.get("/v1/messages", headers=bearer(fx, "chat"),
                         params={"user": user, "conversation_id": conversation_id})
    assert history.status_code == 200, history.text
    assert [m["query"] for m in history.json()["data"]] == [text]
    renamed = client.post(f"/v1/conversations/{conversation_id}/name",
                          headers=bearer(fx, "chat"), json={"name": text, "user": user})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == text.strip()


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("query", b'"a\\u0000b"'),
        ("user", b'"u\\u0000"'),
        ("inputs", b'{"tone": "x\\u0000"}'),
        ("inputs", b'{"key\\u0000": "x"}'),
        ("query", b'"\\ud800 lone surrogate"'),
        ("inputs", b'{"tone": NaN}'),
        ("inputs", b'{"tone": Infinity}'),
        ("inputs", b'{"tone": -Infinity}'),
        ("inputs", b'{"tone": 1e999}'),
    ],
    ids=["nul-query", "nul-user", "nul-value", "nul-key", "lone-surrogate", "nan", "infinity",
         "minus-infinity", "overflow"],
)
@pytest.mark.parametrize("response_mode", ["blocking", "streaming"])
def test_unstorable_text_and_numbers_are_400_on_every_database(
    served: Served, field: str, raw: bytes, response_mode: str
) -> None:
    """NUL characters, lone surrogates and non-finite numbers are 400 invalid_param naming
    the field (PostgreSQL answered 500 for them), and nothing is stored."""
    _app, client, fx = served
    fields = {"query": b'"hi"', "user": f'"{FUZZ_USER}"'.encode(), "inputs": b"{}",
              "response_mode": f'"{response_mode}"'.encode(), field: raw}
    payload = b"{" + b", ".join(b'"%s": %s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    for mode in ("chat", "advanced-chat"):
        with _nothing_changes(served):
            answer = client.post("/v1/chat-messages", content=payload, headers={
                **bearer(fx, mode), "Content-Type": "application/json"})
            body = _refused(answer, 400, "invalid_param")
            assert field in body["message"] or "finite" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/workflows/run/a%00b", None),
        ("GET", "/v1/messages", {"user": "u\x00", "conversation_id": "c"}),
        ("GET", "/v1/conversations", {"user": FUZZ_USER, "last_id": "\x00"}),
        ("POST", "/v1/messages/m%00/feedbacks", None),
    ],
)
def test_nul_in_path_or_query_is_400(served: Served, method: str, path: str,
                                     params: dict[str, str] | None) -> None:
    """A NUL character in the path or a query parameter is 400, never a database error."""
    _app, client, fx = served
    with _nothing_changes(served):
        answer = client.request(method, path, params=params, headers=bearer(fx, "workflow"),
                                json={"rating": "like", "user": FUZZ_USER})
        _refused(answer, 400, "invalid_param")


@pytest.mark.parametrize(
    ("mode", "path", "inputs", "named"),
    [
        ("workflow", "/v1/workflows/run", {"topic": ["a", "list"]}, "topic"),
        ("workflow", "/v1/workflows/run", {"topic": "t", "count": "many"}, "count"),
        ("workflow", "/v1/workflows/run", {"topic": "t", "count": True}, "count"),
        ("workflow", "/v1/workflows/run", {"topic": "t", "count": "1.0e999"}, "count"),
        ("workflow", "/v1/workflows/run", {"topic": "t", "tone": {"a": 1}}, "tone"),
        ("workflow", "/v1/workflows/run", {"topic": "t", "tone": "whisper"}, "tone"),
        ("completion", "/v1/completion-messages", {"A": 5, "default_input": "x"}, "A"),
        ("completion", "/v1/completion-messages", {"A": "MySQL", "default_input": None},
         "default_input"),
        ("chat", "/v1/chat-messages", {"tone": 3.5}, "tone"),
    ],
)
def test_wrong_input_types_are_400_naming_the_input(
    served: Served, mode: str, path: str, inputs: dict[str, Any], named: str
) -> None:
    """A form input of the wrong type or value is 400 invalid_param naming it, nothing stored."""
    _app, client, fx = served
    for response_mode in ("blocking", "streaming"):
        with _nothing_changes(served):
            answer = client.post(path, headers=bearer(fx, mode), json=_chat_body(
                inputs=inputs, response_mode=response_mode))
            body = _refused(answer, 400, "invalid_param")
            assert named in body["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/chat-messages"), ("POST", "/v1/completion-messages"),
     ("POST", "/v1/workflows/run"), ("GET", "/v1/parameters"), ("GET", "/v1/conversations"),
     ("GET", "/v1/messages"), ("POST", "/v1/messages/x/feedbacks"),
     ("GET", "/v1/workflows/run/x")],
)
@pytest.mark.parametrize(
    "authorization",
    ["Bearer app-unknown", "Bearer test-console-token", "Bearer ", "Basic YTpi", "app-no-scheme",
     None],
)
def test_unknown_app_key_is_401_on_every_service_route(
    served: Served, method: str, path: str, authorization: str | None
) -> None:
    """An unknown key, the console token, a wrong scheme or no header is 401 unauthorized."""
    _app, client, _fx = served
    headers = {"Authorization": authorization} if authorization is not None else {}
    with _nothing_changes(served):
        # The client's default console header is replaced (or dropped) for this request.
        client.headers.pop("Authorization")
        try:
            answer = client.request(method, path, headers=headers, json=_chat_body())
        finally:
            client.headers.update(CONSOLE)
        _refused(answer, 401, "unauthorized")
        assert answer.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("mode", ["chat", "advanced-chat"])
@pytest.mark.parametrize("response_mode", ["blocking", "streaming"])
def test_another_users_conversation_is_404_and_untouched(
    served: Served, mode: str, response_mode: str
) -> None:
    """Continuing, listing or renaming another user's conversation is 404 not_found (as
    absent), in both response modes; the owner's conversation is unchanged."""
    _app, client, fx = served
    conversation_id = fx.api_rows[mode]["conversation_id"][0]
    message_id = fx.api_rows[mode]["message_id"][0]
    headers = bearer(fx, mode)
    with _nothing_changes(served):
        _refused(client.post("/v1/chat-messages", headers=headers, json=_chat_body(
            user="intruder", conversation_id=conversation_id, response_mode=response_mode)),
            404, "not_found")
        _refused(client.get("/v1/messages", headers=headers, params={
            "user": "intruder", "conversation_id": conversation_id}), 404, "not_found")
        _refused(client.post(f"/v1/conversations/{conversation_id}/name", headers=headers,
                             json={"name": "mine now", "user": "intruder"}), 404, "not_found")
        _refused(client.post(f"/v1/messages/{message_id}/feedbacks", headers=headers,
                             json={"rating": "dislike", "user": "intruder"}), 404, "not_found")
    owner = client.get("/v1/messages", headers=headers,
                       params={"user": FUZZ_USER, "conversation_id": conversation_id})
    assert owner.status_code == 200
    assert [m["id"] for m in owner.json()["data"]][:1] == [message_id]


@pytest.mark.parametrize("mode", ["chat", "advanced-chat"])
@pytest.mark.parametrize(
    "conversation_id",
    ["does-not-exist", "00000000-0000-4000-8000-000000000000", "x" * 5000, " ", "日本"],
)
def test_streaming_with_a_bad_conversation_id_is_404_before_any_event(
    served: Served, mode: str, conversation_id: str
) -> None:
    """A streaming request naming an unknown conversation is a 404 JSON answer, not an
    event stream, and stores nothing (no run, message or end user)."""
    _app, client, fx = served
    with _nothing_changes(served):
        answer = client.post("/v1/chat-messages", headers=bearer(fx, mode), json=_chat_body(
            conversation_id=conversation_id, response_mode="streaming"))
        _refused(answer, 404, "not_found")


def test_a_conversation_of_another_app_is_404(served: Served) -> None:
    """A conversation id of one app sent with another app's key is 404 (chat and chatflow)."""
    _app, client, fx = served
    chat_conversation = fx.api_rows["chat"]["conversation_id"][0]
    chatflow_conversation = fx.api_rows["advanced-chat"]["conversation_id"][0]
    with _nothing_changes(served):
        _refused(client.post("/v1/chat-messages", headers=bearer(fx, "advanced-chat"),
                             json=_chat_body(conversation_id=chat_conversation)), 404)
        _refused(client.post("/v1/chat-messages", headers=bearer(fx, "chat"),
                             json=_chat_body(conversation_id=chatflow_conversation)), 404)


@pytest.mark.parametrize(
    "message_id", ["nope", "00000000-0000-4000-8000-000000000000", "x" * 2000, "%E2%80%AE"]
)
def test_feedback_on_an_unknown_message_is_404(served: Served, message_id: str) -> None:
    """Rating an unknown message (service API or console) is 404 and records no score."""
    _app, client, fx = served
    with _nothing_changes(served):
        _refused(client.post(f"/v1/messages/{message_id}/feedbacks", headers=bearer(fx, "chat"),
                             json={"rating": "like", "user": FUZZ_USER}), 404, "not_found")
        _refused(client.post(f"/console/api/apps/{fx.app_ids['chat']}/feedbacks",
                             json={"message_id": message_id[:64], "rating": "like"}), 404)


def test_feedback_on_another_apps_message_is_404(served: Served) -> None:
    """A real message id of another app is answered like an unknown one."""
    _app, client, fx = served
    message_id = fx.api_rows["completion"]["message_id"][0]
    with _nothing_changes(served):
        _refused(client.post(f"/v1/messages/{message_id}/feedbacks", headers=bearer(fx, "chat"),
                             json={"rating": "like", "user": FUZZ_USER}), 404, "not_found")


def _import(client: TestClient, yaml_content: str) -> Any:
    return client.post("/console/api/apps/imports",
                       json={"mode": "yaml-content", "yaml_content": yaml_content})


HANDBOOK = (EXAMPLES / "handbook_chat.yml").read_text()


@pytest.mark.parametrize(
    ("yaml_content", "named"),
    [
        (HANDBOOK.replace("name: Handbook assistant", 'name: "Hand\\0book"'), "app.name"),
        (HANDBOOK.replace("  opening_statement:", '  opening_statement: "hi\\0"\n  _was:'),
         "model_config.opening_statement"),
        (HANDBOOK.replace("temperature: 0.2", "temperature: .nan"), "temperature"),
        (HANDBOOK.replace("max_tokens: 256", "max_tokens: .inf"), "max_tokens"),
        (HANDBOOK.replace("name: Handbook assistant", "name: " + "n" * 300), "app.name"),
        (HANDBOOK.replace("name: offline", "name: " + "m" * 300), "model_config.model.name"),
        (HANDBOOK.replace("provider: opstrail", "provider: " + "p" * 300),
         "model_config.model.provider"),
        (HANDBOOK.replace("id: 5b0f7a2e-7c1d-4a8e-9a51-0d1f2c3b4a5e", "id: " + "d" * 300),
         "dataset id"),
        (WORKFLOW_YAML.replace("title: Shape", 'title: "Sh\\0ape"'), "data.title"),
        (WORKFLOW_YAML.replace("type: number, required: false}",
                               "type: number, required: false, default: .inf}"), "default"),
        (WORKFLOW_YAML.replace("- id: shape", "- id: " + "s" * 300)
         .replace("target: shape,", "target: " + "s" * 300 + ",")
         .replace("source: shape,", "source: " + "s" * 300 + ",")
         .replace("[shape, output]", "[" + "s" * 300 + ", output]"), "nodes[1].id"),
        ((EXAMPLES / "memory_chatflow.yml").read_text().replace("last_topic", "v" * 300),
         "conversation_variables"),
    ],
    ids=["nul-name", "nul-opening", "nan-param", "inf-param", "long-name", "long-model",
         "long-provider", "long-dataset-id", "nul-node-title", "inf-default", "long-node-id",
         "long-conversation-variable"],
)
def test_dsl_that_cannot_be_stored_is_refused_at_import(
    served: Served, yaml_content: str, named: str
) -> None:
    """A DSL document with a NUL character, a non-finite number or an over-long name/id is
    400 invalid_dsl naming the place (PostgreSQL answered 500 at import or at the first run),
    and no app is created."""
    _app, client, _fx = served
    with _nothing_changes(served):
        body = _refused(_import(client, yaml_content), 400, "invalid_dsl")
        assert named in body["message"]


CODE_WORKFLOW = """\
app: {name: Code result, mode: workflow}
kind: app
version: 0.6.0
workflow:
  graph:
    edges:
    - {id: e1, source: start, target: code, sourceHandle: source, targetHandle: target}
    - {id: e2, source: code, target: end, sourceHandle: source, targetHandle: target}
    nodes:
    - id: start
      data: {title: Start, type: start, variables: []}
    - id: code
      data:
        title: Code
        type: code
        code_language: python3
        code: |
          def main() -> dict:
              return {"x": RESULT}
        variables: []
        outputs:
          x: {type: KIND, children: null}
    - id: end
      data: {title: End, type: end, outputs: [{variable: out, value_selector: [code, x]}]}
"""


@pytest.mark.parametrize(
    ("result", "kind"),
    [("float('nan')", "number"), ("float('-inf')", "number"), ("[1.0, float('inf')]",
                                                                 "'array[number]'")],
)
def test_code_node_returning_a_non_finite_number_fails_the_node_not_the_server(
    served: Served, result: str, kind: str
) -> None:
    """A code node returning NaN or Infinity fails with its own error; the run is stored as
    failed with its nodes (PostgreSQL answered 500 and left the run 'running')."""
    app, client, _fx = served
    imported = _import(client, CODE_WORKFLOW.replace("RESULT", result).replace("KIND", kind))
    assert imported.status_code == 200, imported.text
    app_id = imported.json()["app_id"]
    token = client.post(f"/console/api/apps/{app_id}/api-keys").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    blocking = client.post("/v1/workflows/run", headers=headers, json={
        "inputs": {}, "user": FUZZ_USER, "response_mode": "blocking"})
    assert blocking.status_code == 200, blocking.text
    data = blocking.json()["data"]
    assert data["status"] == "failed"
    assert "not JSON" in data["error"]
    streaming = client.post("/v1/workflows/run", headers=headers, json={
        "inputs": {}, "user": FUZZ_USER, "response_mode": "streaming"})
    assert streaming.status_code == 200
    events = sse_events(streaming.text)
    assert events[-1]["event"] == "workflow_finished"
    assert events[-1]["data"]["status"] == "failed"
    with app.state.session_factory() as session:
        runs = session.scalars(select(WorkflowRun).where(WorkflowRun.app_id == app_id)).all()
        nodes = session.scalars(
            select(NodeExecutionRow).where(NodeExecutionRow.app_id == app_id)).all()
    assert sorted(r.status for r in runs) == ["failed", "failed"]
    assert {n.node_id for n in nodes} >= {"start", "code"}


def test_refused_requests_leave_the_stored_conversation_unchanged(served: Served) -> None:
    """After a burst of refused requests on one conversation, its messages are exactly the
    ones stored before, and it still accepts a valid message."""
    app, client, fx = served
    conversation_id = fx.api_rows["chat"]["conversation_id"][0]
    headers = bearer(fx, "chat")

    def messages() -> list[tuple[str, str, str]]:
        with app.state.session_factory() as session:
            rows = session.scalars(select(Message).where(
                Message.conversation_id == conversation_id).order_by(Message.created_at)).all()
            return [(m.id, m.query, m.answer) for m in rows]

    before = messages()
    refused = [
        client.post("/v1/chat-messages", headers=headers, json=_chat_body(
            conversation_id=conversation_id, query=" ")),
        client.post("/v1/chat-messages", headers=headers, json=_chat_body(
            conversation_id=conversation_id, user="")),
        client.post("/v1/chat-messages", headers={**headers, "X-Trace-Id": "bad id!"},
                    json=_chat_body(conversation_id=conversation_id)),
        client.post("/v1/chat-messages", headers=headers, json=_chat_body(
            conversation_id=conversation_id, response_mode="sometimes")),
        client.post("/v1/chat-messages", headers=headers, json=_chat_body(
            conversation_id=conversation_id, query="x" * 100_001)),
        client.post("/v1/chat-messages", headers={**headers, "Content-Type": "application/json"},
                    content=b'{"query": "a\\u0000", "conversation_id": "%s", "user": "%s"}' % (
                        conversation_id.encode(), FUZZ_USER.encode())),
    ]
    for answer in refused:
        _refused(answer, 400)
    assert messages() == before
    accepted = client.post("/v1/chat-messages", headers=headers, json=_chat_body(
        conversation_id=conversation_id, query="And sick days?"))
    assert accepted.status_code == 200, accepted.text
    assert messages()[:-1] == before and messages()[-1][1] == "And sick days?"


def test_unexpected_server_error_is_still_a_json_answer(tmp_path: Path) -> None:
    """A bug (an exception no handler knows) answers 500 as JSON {"code", "message"}, not
    Starlette's text/plain page."""
    settings = Settings(data_dir=tmp_path / "data", console_token="test-console-token",
                        loopback_only_hosts=True, embedded_dispatcher=False, log_json=False)
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom")
    body = _refused(answer, 500, "internal_error")
    assert "RuntimeError" in body["message"]


def test_suggested_questions_of_a_chatflow_message_answer_from_its_features(
    served: Served
) -> None:
    """GET /v1/messages/{id}/suggested on a chatflow message reads the feature switch from the
    workflow features (it answered 400 invalid_dsl "no model_config"); another user's
    message stays 404."""
    _app, client, fx = served
    message_id = fx.api_rows["advanced-chat"]["message_id"][0]
    headers = bearer(fx, "advanced-chat")
    answer = client.get(f"/v1/messages/{message_id}/suggested", headers=headers,
                        params={"user": FUZZ_USER})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "success"
    assert isinstance(answer.json()["data"], list)
    _refused(client.get(f"/v1/messages/{message_id}/suggested", headers=headers,
                        params={"user": "intruder"}), 404, "not_found")

"""Workflow and chatflow service API: runs, streaming events, run lookup, stop, persistence,
and the trace record written with the run (complete node list, chatflow message)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from opstrail import ids
from opstrail.api.app import create_app
from opstrail.delivery.codec import decode
from opstrail.settings import Settings
from opstrail.storage.tables.chat import Message
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.storage.tables.workflows import NodeExecutionRow, WorkflowRun
from opstrail.tracing.build import build_trace
from opstrail.tracing.info import (
    ConversationMode,
    NodeStatus,
    WorkflowRunStatus,
    WorkflowTraceInfo,
)
from opstrail.tracing.tree import Level

from .conftest import FIXTURES, dsl, install, sse_events

OFFLINE = {"provider": "langgenius/openai/openai", "name": "gpt-4o", "mode": "chat",
           "completion_params": {"temperature": 0.2}}


def _node(node_id: str, node_type: str, **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "custom", "data": {"type": node_type, "title": node_id, **data}}


def _edge(source: str, target: str, handle: str = "source") -> dict[str, Any]:
    return {"id": f"{source}-{target}", "source": source, "target": target,
            "sourceHandle": handle, "targetHandle": "target"}


def _traces(client: TestClient) -> list[WorkflowTraceInfo]:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.scalars(select(OutboxRow).where(OutboxRow.kind == "workflow")
                               .order_by(OutboxRow.id)).all()
        infos = [decode(row.kind, row.payload or "") for row in rows]
    assert all(isinstance(i, WorkflowTraceInfo) for i in infos)
    return infos  # type: ignore[return-value]


def _check_trace(info: WorkflowTraceInfo, node_rows: int) -> None:
    """The trace record holds every node, and its tree has one observation per node."""
    assert len(info.node_executions) == node_rows > 0
    trace = build_trace(info)
    assert trace.id == ids.trace_id(info.workflow_run_id)
    by_id = {o.id: o for o in trace.observations}
    for execution in info.node_executions:
        observation = by_id[ids.observation_id(ids.seed_node(execution.id))]
        assert observation.start_time == execution.start_time
        if execution.status == NodeStatus.FAILED:
            assert observation.level == Level.ERROR
            assert observation.status_message == execution.error
    assert trace.root is not None
    if info.status == WorkflowRunStatus.FAILED:
        assert trace.root.level == Level.ERROR


AUDIT_INPUTS = {"project_name": "Forest audit", "project_event": "land use",
                "audit_finding": "Unapproved land conversion of 3 hectares."}


def test_audit_fixture_runs_to_the_end_with_the_offline_model(client: TestClient) -> None:
    """The 0.4.0 workflow (LLM, code, retrieval, LLM) runs to the end; run, node rows and the
    trace record are stored together."""
    app_id, headers = install(client, (FIXTURES / "workflow_audit_workpaper_kb_code.yml")
                              .read_text(encoding="utf-8"))
    answer = client.post("/v1/workflows/run", headers=headers, json={
        "inputs": AUDIT_INPUTS, "response_mode": "blocking", "user": "alice"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["data"]["status"] == "succeeded", body
    assert isinstance(body["data"]["outputs"]["text"], str) and body["data"]["outputs"]["text"]
    assert body["data"]["total_steps"] == 6 and body["data"]["total_tokens"] > 0
    run_id = body["workflow_run_id"]
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.scalars(select(NodeExecutionRow).where(
            NodeExecutionRow.workflow_run_id == run_id)).all()
    (info,) = _traces(client)
    assert info.workflow_run_id == run_id and info.context.app_id == app_id
    assert info.triggered_from == "app-run" and info.context.environment == "production"
    assert info.workflow_run_inputs["project_name"] == "Forest audit"
    assert info.workflow_run_inputs["sys.user_id"] == "alice"
    llm = [e for e in info.node_executions if e.node_type == "llm"]
    assert len(llm) == 2 and all(e.model_calls and e.total_tokens > 0 for e in llm)
    assert llm[0].process_data["prompts"][0]["role"] == "system"
    retrieval = next(e for e in info.node_executions if e.node_type == "knowledge-retrieval")
    assert retrieval.process_data["warnings"]  # the encrypted dataset id resolves nowhere
    _check_trace(info, len(rows))
    got = client.get(f"/v1/workflows/run/{run_id}", headers=headers)
    assert got.status_code == 200 and got.json()["status"] == "succeeded"
    assert got.json()["inputs"]["project_name"] == "Forest audit"


def test_iteration_fixture_fails_at_its_unavailable_tool_with_that_nodes_error(
        client: TestClient) -> None:
    """The 0.1.0 workflow needs a workflow-as-tool: the run fails at that node, named."""
    _app_id, headers = install(client, (FIXTURES / "workflow_rich_article_rewrite_iteration.yml")
                               .read_text(encoding="utf-8"))
    answer = client.post("/v1/workflows/run", headers=headers, json={
        "inputs": {"url": "https://example.com/a", "clean_img": 1, "single_img": 0},
        "response_mode": "blocking", "user": "bob"})
    body = answer.json()
    assert body["data"]["status"] == "failed"
    assert "localScrape" in body["data"]["error"] and "not available here" in body["data"]["error"]
    (info,) = _traces(client)
    failed = [e for e in info.node_executions if e.status == NodeStatus.FAILED]
    assert [e.node_type for e in failed] == ["tool"] and failed[0].tool_name is None
    assert "localScrape" in (failed[0].error or "")
    _check_trace(info, len(info.node_executions))


def test_chatflow_fixture_answers_through_chat_messages(client: TestClient) -> None:
    """The chatflow (classifier, retrieval, LLM, answer) answers; the message and a trace
    with message id, query, answer and advanced-chat mode are stored."""
    _app_id, headers = install(client, (FIXTURES / "advanced_chat_admin_assistant_classifier_kb"
                                        ".yml").read_text(encoding="utf-8"))
    answer = client.post("/v1/chat-messages", headers=headers, json={
        "inputs": {"name": "Li"}, "query": "How many days of annual leave?",
        "response_mode": "blocking", "user": "carol"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["answer"] and body["conversation_id"] and body["message_id"]
    (info,) = _traces(client)
    assert info.message_id == body["message_id"]
    assert info.conversation_id == body["conversation_id"]
    assert info.query == "How many days of annual leave?" and info.answer == body["answer"]
    assert info.conversation_mode == ConversationMode.ADVANCED_CHAT
    assert info.node_executions[1].node_type == "question-classifier"
    _check_trace(info, len(info.node_executions))
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        message = session.get(Message, body["message_id"])
        assert message is not None and message.answer == body["answer"]
        assert message.workflow_run_id == info.workflow_run_id


def _memory_chatflow() -> str:
    return dsl(
        "advanced-chat",
        [_node("start", "start", variables=[]),
         _node("llm", "llm", model=OFFLINE,
               prompt_template=[{"role": "system", "text": "Be brief."}],
               memory={"window": {"enabled": True, "size": 5},
                       "query_prompt_template": "{{#sys.query#}}"}),
         _node("count", "assigner", version="2", items=[
             {"variable_selector": ["conversation", "turns"], "input_type": "constant",
              "operation": "+=", "value": 1}]),
         _node("answer", "answer", answer="{{#llm.text#}} (turn {{#conversation.turns#}})")],
        [_edge("start", "llm"), _edge("llm", "count"), _edge("count", "answer")],
        conversation_variables=[{"name": "turns", "value_type": "number", "value": 0,
                                 "id": "v1", "selector": ["conversation", "turns"]}],
    )


def test_chatflow_remembers_earlier_turns_and_conversation_variables(
        client: TestClient) -> None:
    """Turn two's prompt holds turn one's query and answer; conversation variables persist."""
    _app_id, headers = install(client, _memory_chatflow())
    first = client.post("/v1/chat-messages", headers=headers, json={
        "query": "My name is Ada.", "response_mode": "blocking", "user": "u1"}).json()
    assert first["answer"].endswith("(turn 1)")
    second = client.post("/v1/chat-messages", headers=headers, json={
        "query": "What is my name?", "response_mode": "blocking", "user": "u1",
        "conversation_id": first["conversation_id"]}).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert second["answer"].endswith("(turn 2)")
    infos = _traces(client)
    prompts = next(e for e in infos[1].node_executions if e.node_id == "llm"
                   ).process_data["prompts"]
    assert prompts[0] == {"role": "system", "text": "Be brief."}
    assert prompts[1] == {"role": "user", "text": "My name is Ada."}
    assert prompts[2]["role"] == "assistant"
    assert first["answer"].startswith(prompts[2]["text"])
    assert prompts[-1] == {"role": "user", "text": "What is my name?"}
    assert infos[1].workflow_run_inputs["sys.dialogue_count"] == 2


def test_chatflow_streams_message_events_and_ends_with_message_end(client: TestClient) -> None:
    """Streaming chatflow: workflow events, message parts, workflow_finished, message_end.

    Called through the service, as the chat-messages route does, so the event stream is
    checked whatever wraps it into SSE."""
    from opstrail.services.chatflow import handle_chat_message
    from opstrail.storage.tables.apps import App

    app_id, _headers = install(client, _memory_chatflow())
    state = client.app.state  # type: ignore[attr-defined]
    with state.session_factory() as session:
        app = session.get(App, app_id)
        session.expunge(app)
    result = handle_chat_message(session_factory=state.session_factory, settings=state.settings,
                                 app=app, body={"query": "hello", "response_mode": "streaming",
                                                "user": "u2"})
    assert not isinstance(result, dict)
    events = list(result)
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started" and names[-2:] == ["workflow_finished", "message_end"]
    assert "message" in names and "node_finished" in names
    text = "".join(e["answer"] for e in events if e["event"] == "message")
    assert text.endswith("(turn 1)")
    assert all(e["conversation_id"] == events[-1]["conversation_id"] for e in events)


def _workflow_with_code(code: str) -> str:
    return dsl(
        "workflow",
        [_node("start", "start", variables=[{"variable": "topic", "label": "Topic",
                                             "type": "text-input", "required": True}]),
         _node("work", "code", code=code, code_language="python3",
               variables=[{"variable": "topic", "value_selector": ["start", "topic"]}],
               outputs={"out": {"type": "string"}}),
         _node("end", "end", outputs=[{"variable": "out", "value_selector": ["work", "out"]}])],
        [_edge("start", "work"), _edge("work", "end")],
    )


def test_missing_required_input_is_400_and_stores_nothing(client: TestClient) -> None:
    """A required start input that is missing is refused before any run row exists."""
    _app_id, headers = install(client, _workflow_with_code(
        "def main(topic: str) -> dict:\n    return {'out': topic}\n"))
    answer = client.post("/v1/workflows/run", headers=headers,
                         json={"inputs": {}, "response_mode": "blocking", "user": "x"})
    assert answer.status_code == 400
    assert "Topic is required" in answer.json()["message"]
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        assert session.scalars(select(WorkflowRun)).all() == []


def test_streaming_run_sends_difys_events_in_order(client: TestClient) -> None:
    """workflow_started, node_started/node_finished per node, text_chunk, workflow_finished."""
    _app_id, headers = install(client, _workflow_with_code(
        "def main(topic: str) -> dict:\n    return {'out': topic * 2}\n"))
    with client.stream("POST", "/v1/workflows/run", headers=headers, json={
            "inputs": {"topic": "ab"}, "response_mode": "streaming", "user": "x"}) as response:
        events = sse_events(response.read().decode())
    names = [e["event"] for e in events]
    assert names == ["workflow_started", "node_started", "node_finished", "node_started",
                     "node_finished", "node_started", "text_chunk", "node_finished",
                     "workflow_finished"]
    finished = events[-1]
    assert finished["data"]["status"] == "succeeded"
    assert finished["data"]["outputs"] == {"out": "abab"}
    assert events[6]["data"] == {"text": "abab", "from_variable_selector": ["end", "out"]}
    assert all(e["workflow_run_id"] == finished["workflow_run_id"] for e in events)


def test_streaming_iteration_sends_iteration_events(client: TestClient) -> None:
    """An iteration streams iteration_started, one iteration_next per item, completed."""
    _app_id, headers = install(client, dsl(
        "workflow",
        [_node("start", "start", variables=[]),
         _node("items", "code", code="def main() -> dict:\n    return {'xs': [1, 2, 3]}\n",
               code_language="python3", variables=[],
               outputs={"xs": {"type": "array[number]"}}),
         _node("it", "iteration", iterator_selector=["items", "xs"],
               output_selector=["double", "output"], start_node_id="itstart"),
         {**_node("itstart", "iteration-start"), "parentId": "it"},
         {**_node("double", "template-transform", template="{{ x * 2 }}",
                  variables=[{"variable": "x", "value_selector": ["it", "item"]}]),
          "parentId": "it"},
         _node("end", "end", outputs=[{"variable": "out", "value_selector": ["it", "output"]}])],
        [_edge("start", "items"), _edge("items", "it"), _edge("itstart", "double"),
         _edge("it", "end")]))
    with client.stream("POST", "/v1/workflows/run", headers=headers, json={
            "inputs": {}, "response_mode": "streaming", "user": "x"}) as response:
        events = sse_events(response.read().decode())
    names = [e["event"] for e in events]
    assert names.count("iteration_started") == 1 and names.count("iteration_next") == 3
    assert names.index("iteration_started") < names.index("iteration_completed")
    assert events[-1]["data"]["outputs"] == {"out": ["2", "4", "6"]}
    children = [e["data"] for e in events
                if e["event"] == "node_finished" and e["data"]["node_id"] == "double"]
    assert [c["iteration_index"] for c in children] == [0, 1, 2]
    assert all(c["iteration_id"] == "it" for c in children)


def test_stop_ends_a_streaming_run_stopped(client: TestClient) -> None:
    """POST /workflows/tasks/{task_id}/stop: the run ends with status stopped."""
    _app_id, headers = install(client, _workflow_with_code(
        "import time\ndef main(topic: str) -> dict:\n    time.sleep(1)\n"
        "    return {'out': topic}\n"))
    stop_answers: list[int] = []
    with client.stream("POST", "/v1/workflows/run", headers=headers, json={
            "inputs": {"topic": "t"}, "response_mode": "streaming", "user": "stopper"}) as resp:
        events: list[dict[str, Any]] = []
        buffer = ""
        for chunk in resp.iter_text():
            buffer += chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                if not frame.startswith("data: "):
                    continue
                events.extend(sse_events(frame))
                last = events[-1]
                if last["event"] == "node_started" and last["data"]["node_id"] == "work":
                    answer = client.post(f"/v1/workflows/tasks/{last['task_id']}/stop",
                                         headers=headers, json={"user": "stopper"})
                    stop_answers.append(answer.status_code)
    assert stop_answers == [200]
    finished = events[-1]
    assert finished["event"] == "workflow_finished"
    assert finished["data"]["status"] == "stopped"
    assert [e["data"]["node_id"] for e in events if e["event"] == "node_finished"] == [
        "start", "work"]


def test_trace_id_header_and_console_debug_run(client: TestClient) -> None:
    """X-Trace-Id reaches the trace record; a console run is a debugging run."""
    from opstrail.services.workflows import run_workflow
    from opstrail.storage.tables.apps import App
    from opstrail.tracing.info import FromSource

    app_id, headers = install(client, _workflow_with_code(
        "def main(topic: str) -> dict:\n    return {'out': topic}\n"))
    client.post("/v1/workflows/run", headers={**headers, "X-Trace-Id": "order-42"}, json={
        "inputs": {"topic": "a"}, "response_mode": "blocking", "user": "x"})
    state = client.app.state  # type: ignore[attr-defined]
    with state.session_factory() as session:
        app = session.get(App, app_id)
        session.expunge(app)
    result = run_workflow(state.session_factory, state.settings, app=app,
                          inputs={"topic": "b"}, user="", source=FromSource.CONSOLE,
                          account_id=state.account_id, response_mode="blocking")
    assert isinstance(result, dict) and result["data"]["status"] == "succeeded"
    api_info, console_info = _traces(client)
    assert api_info.context.external_trace_id == "order-42"
    assert console_info.triggered_from == "debugging"
    assert console_info.context.environment == state.settings.environment_console
    assert console_info.context.from_account_id == state.account_id


def test_unknown_run_is_404_and_wrong_mode_is_refused(client: TestClient) -> None:
    """GET of an unknown run is 404; a workflow endpoint refuses a chatflow app."""
    _app_id, headers = install(client, _memory_chatflow())
    assert client.get("/v1/workflows/run/nope", headers=headers).status_code == 404
    answer = client.post("/v1/workflows/run", headers=headers,
                         json={"inputs": {}, "response_mode": "blocking", "user": "x"})
    assert answer.status_code == 400 and answer.json()["code"] == "app_unavailable"


@pytest.mark.postgres
def test_runs_and_chatflow_turns_are_stored_on_postgresql(
        offline_settings: Settings, postgres_url: str) -> None:
    """On PostgreSQL the run, its node rows, the message and the trace records commit."""
    pg_settings = offline_settings.model_copy(update={"database_url": postgres_url})
    with TestClient(create_app(pg_settings)) as client:
        _app_id, headers = install(client, _workflow_with_code(
            "def main(topic: str) -> dict:\n    return {'out': topic + '!'}\n"))
        body = client.post("/v1/workflows/run", headers=headers, json={
            "inputs": {"topic": "pg"}, "response_mode": "blocking", "user": "x"}).json()
        assert body["data"]["status"] == "succeeded" and body["data"]["outputs"] == {"out": "pg!"}
        _chat_id, chat_headers = install(client, _memory_chatflow())
        answer = client.post("/v1/chat-messages", headers=chat_headers, json={
            "query": "hi", "response_mode": "blocking", "user": "x"}).json()
        assert answer["answer"].endswith("(turn 1)")
        state = client.app.state  # type: ignore[attr-defined]
        with state.session_factory() as session:
            rows = session.scalars(select(NodeExecutionRow).where(
                NodeExecutionRow.workflow_run_id == body["workflow_run_id"])).all()
            assert [r.node_id for r in rows] == ["start", "work", "end"]
            traced = session.scalars(select(OutboxRow.trace_id).where(
                OutboxRow.kind == "workflow")).all()
        assert ids.trace_id(body["workflow_run_id"]) in traced

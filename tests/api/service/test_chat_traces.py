"""End to end over real HTTP: chat, agent-chat and completion messages through the service API,
and the exact trace trees the local Langfuse-compatible collector receives from the embedded
dispatcher (retrieval, flagged input, agent tools with a failing tool, suggested questions,
conversation naming, feedback, a caller's trace id, a streamed stub model, a provider error).
"""

from __future__ import annotations

import json
from typing import Any

from api.service.conftest import CONSOLE, Served, chat_yaml
from api.service.helpers import named, sse_events, tree
from opstrail import ids

DATASET_ID = "0a1b2c3d-0000-4000-8000-0000000000aa"
OFFLINE_PROVIDER = "langgenius/deepseek/deepseek"  # not configured: runs on the offline model


def _retrieval_app(served: Served) -> dict[str, str]:
    created = served.http.post("/console/api/datasets", headers=CONSOLE, json={
        "name": "Geo", "id": DATASET_ID, "documents": [
            {"name": "france.md", "text": "Paris is the capital of France. It has the Eiffel Tower."},
            {"name": "fruit.txt", "text": "Bananas are yellow fruit rich in potassium."}]})
    assert created.status_code == 201, created.text
    extra = (
        "  suggested_questions_after_answer:\n    enabled: true\n"
        "  retriever_resource:\n    enabled: true\n"
        "  dataset_configs:\n    retrieval_model: multiple\n    top_k: 2\n"
        "    datasets:\n      datasets:\n"
        f"      - dataset:\n          enabled: true\n          id: {DATASET_ID}\n"
    )
    _app_id, key = served.import_app(chat_yaml(provider=OFFLINE_PROVIDER, model="deepseek-chat",
                                               extra=extra))
    return key


def _sorted_tree(trace: dict[str, Any]) -> list[tuple[str | None, str, str, str]]:
    return sorted(tree(trace), key=lambda row: (row[0] or "", row[1], row[2], row[3]))


def test_chat_with_retrieval_traces_retrieval_llm_and_suggestions(served: Served) -> None:
    """A chat run retrieves from the local dataset, answers from it, suggests questions, and
    the collector gets one trace: message -> dataset_retrieval, llm, suggested_question."""
    key = _retrieval_app(served)
    answer = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "geo"}, "query": "What is the capital of France?",
        "response_mode": "blocking", "user": "alice"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "According to the knowledge base: Paris is the capital of France." in body["answer"]
    resources = body["metadata"]["retriever_resources"]
    assert [(r["dataset_id"], r["document_name"]) for r in resources] == [(DATASET_ID, "france.md")]
    usage = body["metadata"]["usage"]
    assert usage["total_price"] == "0" and usage["prompt_tokens"] > 0

    suggested = served.http.get(f"/v1/messages/{body['message_id']}/suggested", headers=key,
                                params={"user": "alice"})
    assert suggested.status_code == 200
    questions = suggested.json()["data"]
    assert len(questions) == 3

    trace = served.wait_trace(ids.trace_id(body["message_id"]), observations=4)
    assert _sorted_tree(trace) == [
        (None, "CHAIN", "message", "DEFAULT"),
        ("message", "GENERATION", "llm", "DEFAULT"),
        ("message", "GENERATION", "suggested_question", "DEFAULT"),
        ("message", "RETRIEVER", "dataset_retrieval", "DEFAULT"),
    ]
    assert trace["name"] == f"message_{body['message_id']}"
    assert trace["sessionId"] == body["conversation_id"] and trace["userId"] == "alice"
    assert set(trace["tags"]) >= {"message", "chat", "dataset_retrieval", "suggested_question"}
    llm = named(trace, "llm")[0]
    assert llm["model"] == "offline"
    assert llm["usageDetails"]["input"] == usage["prompt_tokens"]
    assert llm["usageDetails"]["output"] == usage["completion_tokens"]
    root = named(trace, "message")[0]
    assert root["metadata"]["message_data"]["requested_model"] == "deepseek-chat"
    assert root["metadata"]["message_data"]["model_fallback"] == "offline"
    retrieval = named(trace, "dataset_retrieval")[0]
    assert [d["content"] for d in retrieval["output"]["documents"]] == [
        "Paris is the capital of France. It has the Eiffel Tower."]
    suggestion = named(trace, "suggested_question")[0]
    assert suggestion["output"] == questions
    assert suggestion["usageDetails"]["input"] > 0 and suggestion["usageDetails"]["output"] > 0


def test_flagged_input_answers_preset_and_traces_guardrail(served: Served) -> None:
    """A query with a keyword gets the preset answer, no model call, and a WARNING guardrail."""
    extra = (
        "  sensitive_word_avoidance:\n    enabled: true\n    type: keywords\n    config:\n"
        "      keywords: \"forbidden\\nsecret plan\"\n"
        "      inputs_config:\n        enabled: true\n        preset_response: I cannot talk about that.\n"
        "      outputs_config:\n        enabled: false\n"
    )
    _app_id, key = served.import_app(chat_yaml(provider=OFFLINE_PROVIDER, extra=extra))
    answer = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "ops"}, "query": "Tell me the SECRET PLAN", "response_mode": "blocking",
        "user": "bob"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["answer"] == "I cannot talk about that."
    assert body["metadata"]["usage"]["total_tokens"] == 0
    trace = served.wait_trace(ids.trace_id(body["message_id"]), observations=2)
    assert _sorted_tree(trace) == [
        (None, "CHAIN", "message", "DEFAULT"),
        ("message", "GUARDRAIL", "moderation", "WARNING"),
    ]
    guardrail = named(trace, "moderation")[0]
    assert guardrail["output"]["flagged"] is True
    assert guardrail["output"]["preset_response"] == "I cannot talk about that."
    assert "moderation" in trace["tags"]


def test_agent_tool_call_with_failing_tool_streams_and_traces_tools(served: Served) -> None:
    """An agent calls the calculator and a tool opstrail lacks: the stream shows both thoughts,
    the failing tool's error is fed back, and the trace holds agent -> 2 rounds + 2 tools."""
    extra = (
        "  agent_mode:\n    enabled: true\n    max_iteration: 3\n    strategy: function_call\n"
        "    tools:\n"
        "    - enabled: true\n      provider_id: maths\n      provider_type: builtin\n"
        "      tool_name: calculator\n      tool_parameters: {}\n"
        "    - enabled: true\n      provider_id: langgenius/yahoo/yahoo\n      provider_type: builtin\n"
        "      tool_name: yahoo_finance_news\n      tool_parameters:\n        symbol: ''\n"
    )
    _app_id, key = served.import_app(chat_yaml(mode="agent-chat", provider=OFFLINE_PROVIDER,
                                               extra=extra))
    answer = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "fin"}, "query": "use calculator on 6*(3+4) and yahoo_finance_news for ACME",
        "response_mode": "streaming", "user": "carol"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = sse_events(answer.text)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["agent_thought", "agent_thought"]
    assert set(kinds[2:-1]) == {"agent_message"} and kinds[-1] == "message_end"
    observation = events[1]["observation"]
    assert '"calculator": "42"' in observation and "is not available" in observation
    text = "".join(e["answer"] for e in events if e["event"] == "agent_message")
    assert "The calculator tool returned: 42." in text

    message_id = events[-1]["message_id"]
    trace = served.wait_trace(ids.trace_id(message_id), observations=6)
    assert _sorted_tree(trace) == [
        (None, "CHAIN", "message", "DEFAULT"),
        ("agent", "GENERATION", "llm", "DEFAULT"),
        ("agent", "GENERATION", "llm", "DEFAULT"),
        ("agent", "TOOL", "calculator", "DEFAULT"),
        ("agent", "TOOL", "yahoo_finance_news", "ERROR"),
        ("message", "AGENT", "agent", "DEFAULT"),
    ]
    failing = named(trace, "yahoo_finance_news")[0]
    assert "is not available" in failing["statusMessage"]
    assert str(named(trace, "calculator")[0]["output"]) == "42"  # JSON-looking text reads back as 42
    assert {"tool", "calculator", "yahoo_finance_news", "agent-chat"} <= set(trace["tags"])

    history = served.http.get("/v1/messages", headers=key, params={
        "user": "carol", "conversation_id": events[-1]["conversation_id"]}).json()
    thoughts = history["data"][0]["agent_thoughts"]
    assert [t["tool"] for t in thoughts] == ["calculator;yahoo_finance_news", ""]


def test_first_message_names_conversation_and_rename_adds_generation(served: Served) -> None:
    """The first message names the conversation (generate_name trace); an automatic rename
    adds a second generation to the same trace; a manual rename adds none."""
    _app_id, key = served.import_app(chat_yaml(provider=OFFLINE_PROVIDER))
    first = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "hr"}, "query": "How many vacation days do I have?",
        "response_mode": "blocking", "user": "dave"}).json()
    conversation_id = first["conversation_id"]
    listed = served.http.get("/v1/conversations", headers=key, params={"user": "dave"}).json()
    assert [(c["id"], c["name"]) for c in listed["data"]] == [
        (conversation_id, "How many vacation days do I have?")]
    title_trace_id = ids.trace_id(ids.seed_conversation_root(conversation_id))
    trace = served.wait_trace(title_trace_id, observations=2)
    assert _sorted_tree(trace) == [
        (None, "CHAIN", "generate_name", "DEFAULT"),
        ("generate_name", "GENERATION", "generate_name", "DEFAULT"),
    ]
    assert trace["name"] == "generate_name" and trace["tags"] == ["generate_name"]
    assert trace["sessionId"] == conversation_id

    renamed = served.http.post(f"/v1/conversations/{conversation_id}/name", headers=key,
                               json={"auto_generate": True, "user": "dave"})
    assert renamed.status_code == 200 and renamed.json()["name"]
    trace = served.wait_trace(title_trace_id, observations=3)
    assert _sorted_tree(trace) == [
        (None, "CHAIN", "generate_name", "DEFAULT"),
        ("generate_name", "GENERATION", "generate_name", "DEFAULT"),
        ("generate_name", "GENERATION", "generate_name", "DEFAULT"),
    ]
    manual = served.http.post(f"/v1/conversations/{conversation_id}/name", headers=key,
                              json={"name": "Holidays", "user": "dave"})
    assert manual.json()["name"] == "Holidays"


def test_feedback_scores_the_message_trace_and_revoke_deletes_it(served: Served) -> None:
    """A like becomes a score on the message's trace; a null rating deletes it."""
    _app_id, key = served.import_app(chat_yaml(provider=OFFLINE_PROVIDER))
    body = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "qa"}, "query": "Rate me", "response_mode": "blocking", "user": "erin",
        "auto_generate_name": False}).json()
    message_id = body["message_id"]
    trace_id = ids.trace_id(message_id)
    served.wait_trace(trace_id)
    liked = served.http.post(f"/v1/messages/{message_id}/feedbacks", headers=key,
                             json={"rating": "like", "user": "erin", "content": "great"})
    assert liked.json() == {"result": "success"}
    score = served.collector.wait_for(lambda c: [s for s in c.scores() if s["traceId"] == trace_id])
    assert score[0]["id"] == ids.score_id(message_id)
    history = served.http.get("/v1/messages", headers=key, params={
        "user": "erin", "conversation_id": body["conversation_id"]}).json()
    assert history["data"][0]["feedback"] == {"rating": "like"}
    served.http.post(f"/v1/messages/{message_id}/feedbacks", headers=key,
                     json={"rating": None, "user": "erin"})
    served.collector.wait_for(lambda c: not [s for s in c.scores() if s["traceId"] == trace_id])


def test_caller_trace_id_becomes_the_trace_id(served: Served) -> None:
    """X-Trace-Id names the trace (hashed by the id rule) and is kept in its metadata."""
    _app_id, key = served.import_app(chat_yaml(provider=OFFLINE_PROVIDER))
    answer = served.http.post("/v1/chat-messages", headers={**key, "X-Trace-Id": "order-42_a"}, json={
        "inputs": {"team": "qa"}, "query": "hi", "response_mode": "blocking", "user": "fay",
        "auto_generate_name": False})
    assert answer.status_code == 200
    trace = served.wait_trace(ids.external_trace_id("order-42_a"))
    assert trace["metadata"]["external_trace_id"] == "order-42_a"


def test_stub_model_stream_carries_usage_and_first_token_time(served: Served) -> None:
    """An OpenAI-compatible model streams through the app: usage from the final chunk reaches
    message_end and the llm generation, with its completion start time."""
    _app_id, key = served.import_app(chat_yaml(provider="langgenius/openai/openai", model="gpt-4o-mini"))
    answer = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "qa"}, "query": "Say hello", "response_mode": "streaming", "user": "gus",
        "auto_generate_name": False})
    events = sse_events(answer.text)
    assert "".join(e["answer"] for e in events if e["event"] == "message") == served.stub.state.answer
    end = events[-1]
    assert end["event"] == "message_end"
    usage = end["metadata"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (17, 11)
    assert usage["total_price"] == "0.0000092"  # 17 * 0.15e-6 + 11 * 0.6e-6 USD
    trace = served.wait_trace(ids.trace_id(end["message_id"]), observations=2)
    llm = named(trace, "llm")[0]
    assert llm["model"] == "gpt-4o-mini"
    assert (llm["usageDetails"]["input"], llm["usageDetails"]["output"]) == (17, 11)
    assert llm["completionStartTime"] is not None
    assert llm["modelParameters"]["temperature"] in (0.1, "0.1")


def test_provider_error_stores_error_message_and_error_trace(served: Served) -> None:
    """A failing provider answers 400 completion_request_error; the message is stored with
    status error and its trace is recorded at level ERROR."""
    _app_id, key = served.import_app(chat_yaml(provider="openai", model="gpt-4o"))
    served.stub.state.fail_status = 503
    try:
        answer = served.http.post("/v1/chat-messages", headers=key, json={
            "inputs": {"team": "qa"}, "query": "Fail please", "response_mode": "blocking",
            "user": "hal", "auto_generate_name": False})
        streamed = served.http.post("/v1/chat-messages", headers=key, json={
            "inputs": {"team": "qa"}, "query": "Fail again", "response_mode": "streaming",
            "user": "hal2", "auto_generate_name": False})
    finally:
        served.stub.state.fail_status = None
    last = sse_events(streamed.text)[-1]
    assert (last["event"], last["code"], last["status"]) == ("error", "completion_request_error", 400)
    assert answer.status_code == 400
    assert answer.json()["code"] == "completion_request_error"
    conversations = served.http.get("/v1/conversations", headers=key, params={"user": "hal"}).json()
    history = served.http.get("/v1/messages", headers=key, params={
        "user": "hal", "conversation_id": conversations["data"][0]["id"]}).json()
    stored = history["data"][0]
    assert stored["status"] == "error" and "503" in stored["error"]
    trace = served.wait_trace(ids.trace_id(stored["id"]), observations=2)
    root = named(trace, "message")[0]
    assert root["level"] == "ERROR" and "503" in root["statusMessage"]


def test_stop_ends_a_streaming_message_as_stopped(served: Served) -> None:
    """POST .../stop during a slow stream ends it early: the partial answer is stored with
    status stopped and the trace's root is at level WARNING."""
    _app_id, key = served.import_app(chat_yaml(provider="openai", model="gpt-4o-mini"))
    served.stub.state.answer = " ".join(f"word{i}" for i in range(40))
    served.stub.state.chunk_delay = 0.05
    try:
        with served.http.stream("POST", "/v1/chat-messages", headers=key, json={
            "inputs": {"team": "qa"}, "query": "Talk slowly", "response_mode": "streaming",
            "user": "ivy", "auto_generate_name": False,
        }) as stream:
            lines = stream.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            task_id = json.loads(first[len("data: "):])["task_id"]
            stopped = served.http.post(f"/v1/chat-messages/{task_id}/stop", headers=key,
                                       json={"user": "ivy"})
            assert stopped.json() == {"result": "success"}
            rest = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
    finally:
        served.stub.state.chunk_delay = 0.0
        served.stub.state.answer = "Hello from the stub model. It answers every question the same way."
    assert rest[-1]["event"] == "message_end"
    history = served.http.get("/v1/messages", headers=key, params={
        "user": "ivy", "conversation_id": rest[-1]["conversation_id"]}).json()["data"]
    assert history[0]["status"] == "stopped"
    assert 0 < len(history[0]["answer"].split()) < 40
    trace = served.wait_trace(ids.trace_id(rest[-1]["message_id"]), observations=2)
    assert named(trace, "message")[0]["level"] == "WARNING"


def test_the_server_encodes_each_message_trace_after_the_commit(served: Served) -> None:
    """The server's encoder thread (not the request) builds and encodes the message trace,
    and the trace arrives whole."""
    encoder = served.app.state.wire_encoder
    assert encoder is not None
    _app_id, key = served.import_app(chat_yaml(provider=OFFLINE_PROVIDER))
    before = encoder.stats.encoded
    body = served.http.post("/v1/chat-messages", headers=key, json={
        "inputs": {"team": "qa"}, "query": "Encode me later", "response_mode": "blocking",
        "user": "frank", "auto_generate_name": False}).json()
    assert encoder.flush()
    assert encoder.stats.encoded == before + 1
    trace = served.wait_trace(ids.trace_id(body["message_id"]))
    assert trace["name"].startswith("message")

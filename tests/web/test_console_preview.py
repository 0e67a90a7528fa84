"""Debug and preview in a real browser: console runs stream, are traced as the console
account (from_source console, environment debug), and link to their trace once delivered."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from opstrail import ids

from .conftest import FIXTURES, ConsoleServer

CHAT_APP = "chat_food_calorie_planner.yml"
WORKFLOW_APP = "workflow_audit_workpaper_kb_code.yml"


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _import_yaml(server: ConsoleServer, document: dict[str, Any]) -> str:
    with server.api() as client:
        answer = client.post(
            "/console/api/apps/imports",
            json={"mode": "yaml-content", "yaml_content": yaml.safe_dump(document, allow_unicode=True)},
        )
    assert answer.status_code in (200, 201, 202), answer.text
    body = answer.json()
    return str(body.get("app_id") or body["id"])


def _chat_app_with_suggestions(server: ConsoleServer) -> str:
    """The chat fixture with "suggested questions after answer" switched on."""
    document = yaml.safe_load((FIXTURES / "dsl" / CHAT_APP).read_text(encoding="utf-8"))
    document["model_config"]["suggested_questions_after_answer"] = {"enabled": True}
    return _import_yaml(server, document)


def _enable_langfuse(server: ConsoleServer, app_id: str, collector: Any) -> None:
    """Configure and enable the local collector as the app's Langfuse, through the API."""
    with server.api() as client:
        saved = client.post(
            f"/console/api/apps/{app_id}/trace-config",
            json={
                "tracing_provider": "langfuse",
                "tracing_config": {
                    "public_key": "pk-lf-test",
                    "secret_key": "sk-lf-test",
                    "host": collector.url,
                },
            },
        )
        assert saved.status_code in (200, 201), saved.text
        enabled = client.post(
            f"/console/api/apps/{app_id}/trace",
            json={"enabled": True, "tracing_provider": "langfuse"},
        )
        assert enabled.status_code in (200, 201, 204), enabled.text


def _metadata(trace: dict[str, Any]) -> dict[str, Any]:
    metadata = trace.get("metadata") or {}
    assert isinstance(metadata, dict)
    return metadata


@pytest.mark.browser
def test_preview_chat_traces_two_turns_as_console_when_sent(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any, screenshot: Any
) -> None:
    """Two turns in the chat box share a conversation, stream answers, offer suggested
    questions and ratings, and arrive at the collector as console/debug traces with links."""
    expect = _expect()
    app_id = _chat_app_with_suggestions(console_server)
    _enable_langfuse(console_server, app_id, collector)
    page = signed_in_page
    page.goto(f"{console_server.url}/console/apps/{app_id}/preview")
    log = page.locator("#chat-log")
    expect(log.locator("li.opening")).to_contain_text("你好")
    expect(page.locator("#chat-suggested button").first).to_be_visible()

    page.get_by_label("Message").fill("How many calories are in a banana?")
    page.get_by_role("button", name="Send").click()
    first = log.locator("li.assistant").nth(0)
    expect(first.locator(".meta")).to_be_visible(timeout=30_000)
    expect(first.locator(".text")).not_to_have_text("")
    expect(page.locator("#chat-suggested button").first).to_be_visible()
    first.get_by_role("button", name="Like", exact=True).click()
    expect(first.get_by_role("button", name="Like", exact=True)).to_have_attribute("aria-pressed", "true")
    collector.wait_for(lambda c: len(c.scores()) == 1, timeout=30)

    page.get_by_label("Message").fill("And an apple?")
    page.keyboard.press("Enter")
    second = log.locator("li.assistant").nth(1)
    expect(second.locator(".meta")).to_be_visible(timeout=30_000)
    for answer in (first, second):
        expect(answer.locator(".delivery")).to_have_attribute("data-state", "delivered", timeout=30_000)
        expect(answer.get_by_role("link", name="View trace in Langfuse")).to_have_attribute(
            "href", f"{collector.url}/project/proj-test/traces/" + _trace_id_of(answer)
        )
    screenshot(page, "debug-preview-chat")

    traces = [t for t in collector.traces() if t["name"].startswith("message_")]
    assert len(traces) == 2
    sessions = {trace.get("sessionId") for trace in traces}
    assert len(sessions) == 1 and None not in sessions
    for trace in traces:
        metadata = _metadata(trace)
        assert trace.get("environment") == "debug"
        assert metadata["from_source"] == "console"
        assert metadata["from_account_id"]
        assert not metadata.get("from_end_user_id")

    page.get_by_role("button", name="Restart conversation").click()
    expect(log.locator("li.assistant")).to_have_count(0)


def _trace_id_of(answer: Any) -> str:
    return ids.trace_id(answer.get_attribute("data-message-id"))


@pytest.mark.browser
def test_preview_workflow_shows_nodes_and_traces_as_debugging_when_run(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any, screenshot: Any
) -> None:
    """The start node's form runs the workflow; each node's status streams in, and the run
    reaches the collector as a console/debug trace with triggered_from debugging."""
    expect = _expect()
    app_id = console_server.import_app(WORKFLOW_APP)
    _enable_langfuse(console_server, app_id, collector)
    page = signed_in_page
    page.goto(f"{console_server.url}/console/apps/{app_id}/preview")
    form = page.locator("#workflow-form")
    expect(form.get_by_label("项目名称 *")).to_be_visible()
    form.get_by_label("项目名称 *").fill("Annual audit")
    form.get_by_label("审计调查事项 *").fill("Expense claims")
    form.get_by_label("审计要点 *").fill("Check duplicate claims.")
    form.get_by_role("button", name="Run").click()
    status = page.locator("#workflow-result .run-status")
    expect(status).to_contain_text("Run ", timeout=60_000)
    expect(status).not_to_have_text("Running…")
    nodes = page.locator("#workflow-nodes li.node")
    expect(nodes.first).to_be_visible()
    assert nodes.count() >= 3
    expect(page.locator("#workflow-result .delivery")).to_have_attribute(
        "data-state", "delivered", timeout=30_000
    )
    expect(page.get_by_role("link", name="View trace in Langfuse")).to_be_visible()
    screenshot(page, "debug-preview-workflow")

    (trace,) = [t for t in collector.traces() if t["name"].startswith("workflow_")]
    metadata = _metadata(trace)
    assert trace.get("environment") == "debug"
    assert metadata["from_source"] == "console"
    assert metadata["triggered_from"] == "debugging"
    assert metadata["from_account_id"]


def test_service_api_run_is_traced_as_api_production_when_called(
    console_server: ConsoleServer, collector: Any
) -> None:
    """The same app run through the service API is traced as from_source api, production."""
    app_id = console_server.import_app(CHAT_APP)
    _enable_langfuse(console_server, app_id, collector)
    with console_server.api() as client:
        key = client.post(f"/console/api/apps/{app_id}/api-keys", json={})
    assert key.status_code in (200, 201), key.text
    token = key.json()["token"]
    with httpx.Client(base_url=console_server.url, timeout=60) as client:
        answer = client.post(
            "/v1/chat-messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"inputs": {}, "query": "hi", "response_mode": "blocking", "user": "end-user-1"},
        )
    assert answer.status_code == 200, answer.text
    trace_id = ids.trace_id(answer.json()["message_id"])
    trace = collector.wait_for(lambda c: c.trace(trace_id), timeout=30)
    metadata = _metadata(trace)
    assert trace.get("environment") == "production"
    assert metadata["from_source"] == "api"
    assert metadata["from_end_user_id"]
    assert not metadata.get("from_account_id")


def test_preview_parameters_follow_dsl_when_requested(console_server: ConsoleServer) -> None:
    """The panel's parameters come from the DSL: chat opening statement and questions,
    completion input form, workflow start-node variables."""
    chat = console_server.import_app(CHAT_APP)
    completion = console_server.import_app("completion_sql_creator.yml")
    workflow = console_server.import_app(WORKFLOW_APP)
    with console_server.api() as client:
        chat_params = client.get(f"/console/api/apps/{chat}/preview/parameters").json()
        completion_params = client.get(f"/console/api/apps/{completion}/preview/parameters").json()
        workflow_params = client.get(f"/console/api/apps/{workflow}/preview/parameters").json()
        missing = client.get("/console/api/apps/no-such-app/preview/parameters")
    assert chat_params["mode"] == "chat"
    assert chat_params["opening_statement"].startswith("你好")
    assert len(chat_params["suggested_questions"]) >= 1
    assert [next(iter(f)) for f in completion_params["user_input_form"]] == ["select", "paragraph"]
    select = completion_params["user_input_form"][0]["select"]
    assert select["variable"] == "A" and "PostgreSQL" in select["options"] and select["required"]
    variables = [next(iter(f.values()))["variable"] for f in workflow_params["user_input_form"]]
    assert variables == ["project_name", "project_event", "audit_finding"]
    assert missing.status_code == 404


@pytest.mark.browser
def test_preview_completion_form_runs_and_shows_failed_delivery_when_tracing_off(
    signed_in_page: Any, console_server: ConsoleServer
) -> None:
    """A completion app's input form runs the app; with tracing not configured the answer
    says its trace failed to deliver, and why."""
    expect = _expect()
    app_id = console_server.import_app("completion_sql_creator.yml")
    page = signed_in_page
    page.goto(f"{console_server.url}/console/apps/{app_id}/preview")
    form = page.locator("#completion-form")
    form.get_by_role("button", name="Run").click()
    expect(form.get_by_label("数据库类型 *")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("数据库类型 *").select_option("PostgreSQL")
    form.get_by_label("描述需求 *").fill("Users who signed up last week.")
    form.get_by_role("button", name="Run").click()
    result = page.locator("#completion-result")
    expect(result.locator("pre.answer")).not_to_have_text("", timeout=30_000)
    delivery = result.locator(".delivery")
    expect(delivery).to_have_attribute("data-state", "failed", timeout=20_000)
    expect(delivery).to_contain_text("tracing was not configured or disabled")


@pytest.mark.browser
def test_preview_chatflow_streams_answer_as_console_when_sent(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any
) -> None:
    """A chatflow (advanced-chat) turn in the chat box streams its answer and is traced
    under its workflow run as a console/debug trace."""
    expect = _expect()
    app_id = console_server.import_app("advanced_chat_admin_assistant_classifier_kb.yml")
    _enable_langfuse(console_server, app_id, collector)
    page = signed_in_page
    page.goto(f"{console_server.url}/console/apps/{app_id}/preview")
    name = page.locator("#chat-inputs").get_by_label("员工名字 *")
    page.get_by_label("Message").fill("How do I book a meeting room?")
    page.get_by_role("button", name="Send").click()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Message")).to_have_value("How do I book a meeting room?")
    name.fill("Alex")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("#chat-log li.assistant").first
    expect(answer.locator(".meta")).to_be_visible(timeout=60_000)
    expect(answer.locator(".text")).not_to_have_text("")
    expect(answer.locator(".delivery")).to_have_attribute("data-state", "delivered", timeout=30_000)
    (trace,) = [t for t in collector.traces() if t["name"].startswith("workflow_")]
    metadata = _metadata(trace)
    assert trace.get("environment") == "debug"
    assert metadata["from_source"] == "console"
    assert metadata["triggered_from"] == "debugging"
    link = answer.get_by_role("link", name="View trace in Langfuse")
    expect(link).to_have_attribute("href", f"{collector.url}/project/proj-test/traces/{trace['id']}")


@pytest.mark.browser
def test_preview_agent_chat_streams_answer_when_sent(
    signed_in_page: Any, console_server: ConsoleServer
) -> None:
    """An agent-chat app answers in the chat box (agent_message events) with its opening
    statement shown first."""
    expect = _expect()
    app_id = console_server.import_app("agent_chat_investment_report_tools.yml")
    page = signed_in_page
    page.goto(f"{console_server.url}/console/apps/{app_id}/preview")
    expect(page.locator("#chat-log li.opening")).to_contain_text("投资")
    page.get_by_label("Message").fill("Give me a short report on ACME.")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("#chat-log li.assistant").first
    expect(answer.locator(".meta")).to_be_visible(timeout=60_000)
    expect(answer.locator(".text")).not_to_have_text("")
    expect(answer.get_by_role("alert")).to_have_count(0)

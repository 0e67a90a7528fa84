"""The Monitoring page in a real browser: configure Langfuse against the local collector,
see delivery, reject bad keys in the dialog, edit without retyping, disable and remove."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import ConsoleServer

pytestmark = pytest.mark.browser

CHAT_APP = "chat_food_calorie_planner.yml"
REJECTED = "Langfuse rejected these keys. Check that they belong to this host/region."


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _open_monitoring(page: Any, server: ConsoleServer, app_id: str) -> None:
    page.goto(f"{server.url}/console/apps/{app_id}/monitoring")
    _expect()(page.locator("#tracing-status .status-text")).not_to_have_text("Loading…")


def _configure(page: Any, *, secret: str, public: str, host: str) -> None:
    page.get_by_role("button", name="Config").click()
    dialog = page.get_by_role("dialog", name="Config Langfuse")
    _expect()(dialog).to_be_visible()
    dialog.get_by_label("Secret Key").fill(secret)
    dialog.get_by_label("Public Key").fill(public)
    dialog.get_by_label("Host").fill(host)
    dialog.get_by_role("button", name="Save & Enable").click()


def _chat_once(server: ConsoleServer, app_id: str, query: str = "How many calories in an apple?") -> str:
    """One blocking chat turn through the console endpoint; the message id."""
    with server.api() as client:
        answer = client.post(
            f"/console/api/apps/{app_id}/chat-messages",
            json={"inputs": {}, "query": query, "response_mode": "blocking"},
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["message_id"])


def _trace_config(server: ConsoleServer, app_id: str) -> dict[str, Any]:
    with server.api() as client:
        answer = client.get(
            f"/console/api/apps/{app_id}/trace-config", params={"tracing_provider": "langfuse"}
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_monitoring_starts_tracing_when_keys_are_good(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any, screenshot: Any
) -> None:
    """Good keys: the dialog closes, status is In Service, a chat trace reaches the collector,
    the delivered count moves and the latest trace links into the Langfuse project."""
    expect = _expect()
    page = signed_in_page
    app_id = console_server.import_app(CHAT_APP)
    _open_monitoring(page, console_server, app_id)
    switch = page.get_by_role("switch", name="Tracing")
    expect(switch).to_be_disabled()
    expect(page.locator("#switch-help")).to_have_text("Configure a provider first")

    page.get_by_role("button", name="Config").click()
    dialog = page.get_by_role("dialog", name="Config Langfuse")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Secret Key")).to_be_focused()
    expect(dialog.get_by_label("Host")).to_have_attribute("placeholder", "https://cloud.langfuse.com")
    expect(dialog.get_by_role("link", name="View Langfuse docs")).to_be_visible()
    expect(dialog.locator("#config-lock")).to_contain_text("encrypted")
    expect(dialog.get_by_role("button", name="Remove")).to_be_hidden()
    dialog.get_by_label("Secret Key").fill("sk-lf-test")
    dialog.get_by_label("Public Key").fill("pk-lf-test")
    dialog.get_by_label("Host").fill(collector.url)
    screenshot(page, "monitoring-config-dialog")
    dialog.get_by_role("button", name="Save & Enable").click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#tracing-status .status-text")).to_have_text("In Service")
    expect(switch).to_be_enabled()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(page.locator("#lf-in-use")).to_be_visible()
    view = page.get_by_role("link", name="View", exact=True)
    expect(view).to_have_attribute("href", f"{collector.url}/project/proj-test")

    message_id = _chat_once(console_server, app_id)
    trace_id = _trace_id(message_id)
    collector.wait_for(lambda c: c.trace(trace_id) is not None, timeout=30)
    # The message trace, plus the new conversation's title trace.
    delivered = page.locator("#count-delivered")
    expect(delivered).not_to_have_text("0", timeout=20_000)
    expect(page.locator("#last-success")).not_to_have_text("never")
    link = page.locator(f'#latest-traces a.trace-link[href$="/traces/{trace_id}"]')
    expect(link).to_have_attribute(
        "href", f"{collector.url}/project/proj-test/traces/{trace_id}"
    )
    collector.wait_for(lambda c: len(c.traces()) == int(delivered.inner_text()), timeout=20)
    screenshot(page, "monitoring-panel")


def _trace_id(domain_id: str) -> str:
    from opstrail import ids

    return ids.trace_id(domain_id)


def test_monitoring_dialog_explains_rejection_when_keys_are_wrong(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any
) -> None:
    """Wrong keys: the dialog stays open with the plain reason, and nothing is saved."""
    expect = _expect()
    page = signed_in_page
    app_id = console_server.import_app(CHAT_APP)
    _open_monitoring(page, console_server, app_id)
    _configure(page, secret="sk-lf-wrong", public="pk-lf-wrong", host=collector.url)
    dialog = page.get_by_role("dialog", name="Config Langfuse")
    expect(dialog.get_by_role("alert")).to_have_text(REJECTED)
    expect(dialog).to_be_visible()
    assert _trace_config(console_server, app_id) == {"has_not_configured": True}

    dialog.get_by_label("Host").fill("http://127.0.0.1:1")
    dialog.get_by_role("button", name="Save & Enable").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Could not reach this host")
    dialog.get_by_label("Public Key").fill("")
    dialog.get_by_role("button", name="Save & Enable").click()
    expect(dialog.get_by_role("alert")).to_have_text("Fill in: Public Key.")
    expect(dialog.get_by_label("Public Key")).to_be_focused()
    assert _trace_config(console_server, app_id) == {"has_not_configured": True}

    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("switch", name="Tracing")).to_be_disabled()
    expect(page.locator("#tracing-status .status-text")).to_have_text("Not configured")


def test_monitoring_keeps_secret_when_edited_without_retyping(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any
) -> None:
    """Editing shows masked keys; saving without touching them keeps delivery working."""
    expect = _expect()
    page = signed_in_page
    app_id = console_server.import_app(CHAT_APP)
    _open_monitoring(page, console_server, app_id)
    _configure(page, secret="sk-lf-test", public="pk-lf-test", host=collector.url)
    expect(page.locator("#tracing-status .status-text")).to_have_text("In Service")

    page.get_by_role("button", name="Config").click()
    dialog = page.get_by_role("dialog", name="Config Langfuse")
    secret = dialog.get_by_label("Secret Key")
    expect(secret).not_to_have_value("sk-lf-test")
    assert "*" in secret.input_value()
    expect(dialog.get_by_role("button", name="Save", exact=True)).to_be_visible()
    dialog.get_by_label("Host").fill(collector.url + "/")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#tracing-status .status-text")).to_have_text("In Service")

    trace_id = _trace_id(_chat_once(console_server, app_id))
    collector.wait_for(lambda c: c.trace(trace_id) is not None, timeout=30)
    expect(page.locator("#count-delivered")).not_to_have_text("0", timeout=20_000)


def test_monitoring_disables_and_removes_when_asked(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any
) -> None:
    """The switch turns tracing off and on; Remove asks first, then clears the config and
    leaves the switch disabled with its explanation."""
    expect = _expect()
    page = signed_in_page
    app_id = console_server.import_app(CHAT_APP)
    _open_monitoring(page, console_server, app_id)
    _configure(page, secret="sk-lf-test", public="pk-lf-test", host=collector.url)
    status = page.locator("#tracing-status .status-text")
    expect(status).to_have_text("In Service")

    switch = page.get_by_role("switch", name="Tracing")
    switch.click()
    expect(status).to_have_text("Disabled")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.press("Space")
    expect(status).to_have_text("In Service")

    page.get_by_role("button", name="Config").click()
    page.get_by_role("dialog", name="Config Langfuse").get_by_role("button", name="Remove").click()
    confirm = page.get_by_role("alertdialog", name="Remove Langfuse configuration?")
    expect(confirm).to_contain_text("The current configuration is in use, removing it will turn off tracing.")
    confirm.get_by_role("button", name="Remove").click()
    expect(confirm).to_be_hidden()
    expect(status).to_have_text("Not configured")
    expect(switch).to_be_disabled()
    expect(page.locator("#switch-help")).to_have_text("Configure a provider first")
    assert _trace_config(console_server, app_id) == {"has_not_configured": True}


def test_monitoring_is_keyboard_usable_and_fits_narrow_screens(
    signed_in_page: Any, console_server: ConsoleServer, screenshot: Any
) -> None:
    """Escape closes the dialog and focus returns to Config; at 375 px nothing scrolls sideways."""
    expect = _expect()
    page = signed_in_page
    app_id = console_server.import_app(CHAT_APP)
    for width in (375, 1440):
        page.set_viewport_size({"width": width, "height": 800})
        _open_monitoring(page, console_server, app_id)
        config = page.get_by_role("button", name="Config")
        config.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Config Langfuse")
        expect(dialog).to_be_visible()
        for field in ("Secret Key", "Public Key", "Host"):
            expect(dialog.get_by_label(field)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if width == 375:
            screenshot(page, "monitoring-config-dialog-375px")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(config).to_be_focused()


def test_console_api_rejects_page_calls_when_token_missing(console_server: ConsoleServer) -> None:
    """The API the pages call needs the console token (the pages have no other way in)."""
    with httpx.Client(base_url=console_server.url, timeout=10) as client:
        answer = client.get("/console/api/apps/any/preview/parameters")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


def test_monitoring_names_reason_when_langfuse_rejects_delivery(
    signed_in_page: Any, console_server: ConsoleServer, collector: Any
) -> None:
    """Keys that Langfuse later refuses (401 on ingestion) turn "In Service" into "Keys
    rejected by Langfuse", with the trace kept pending and the last error shown."""
    from opstrail.collector.faults import FaultConfig

    expect = _expect()
    page = signed_in_page
    app_id = console_server.import_app(CHAT_APP)
    _open_monitoring(page, console_server, app_id)
    _configure(page, secret="sk-lf-test", public="pk-lf-test", host=collector.url)
    status = page.locator("#tracing-status .status-text")
    expect(status).to_have_text("In Service")

    collector.set_faults(FaultConfig(error_rate=1.0, error_status=401, targets=("otel",)))
    _chat_once(console_server, app_id)
    expect(status).to_have_text("Keys rejected by Langfuse", timeout=20_000)
    expect(page.locator("#tracing-status")).to_have_attribute("data-state", "unauthorized")
    expect(page.locator("#count-pending")).not_to_have_text("0")
    expect(page.locator("#count-delivered")).to_have_text("0")
    expect(page.locator("#last-error")).not_to_have_text("none")
    assert collector.traces() == []

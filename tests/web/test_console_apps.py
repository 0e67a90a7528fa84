"""Sign-in, the app list with DSL import, and an app's Overview, in a real browser."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .conftest import CONSOLE_TOKEN, FIXTURES, ConsoleServer

pytestmark = pytest.mark.browser


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_signin_refuses_token_when_wrong(page: Any, console_server: ConsoleServer) -> None:
    """A wrong token stays on the sign-in page with a plain message; nothing is stored."""
    expect = _expect()
    page.goto(f"{console_server.url}/console/apps")
    page.wait_for_url(f"{console_server.url}/console/signin")
    page.get_by_label("Console token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text("This token is not valid for this server.")
    assert page.evaluate("sessionStorage.length") == 0


def test_signin_opens_app_list_and_signout_forgets_token(
    page: Any, console_server: ConsoleServer
) -> None:
    """The right token opens the app list; Sign out forgets it and pages send you back."""
    expect = _expect()
    page.goto(f"{console_server.url}/console/signin")
    page.get_by_label("Console token").fill(CONSOLE_TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console_server.url}/console/apps")
    expect(page.get_by_role("heading", name="Apps", exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{console_server.url}/console/signin")
    page.goto(f"{console_server.url}/console/apps")
    page.wait_for_url(f"{console_server.url}/console/signin")


def test_app_list_imports_dsl_file_when_uploaded(
    signed_in_page: Any, console_server: ConsoleServer, screenshot: Any
) -> None:
    """Uploading a DSL file imports the app; it appears in the list with its mode."""
    expect = _expect()
    page = signed_in_page
    page.get_by_label("DSL file (YAML)").set_input_files(str(FIXTURES / "dsl" / "completion_sql_creator.yml"))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("link", name="Open the app")).to_be_visible()
    row = page.locator("#apps-table tbody tr").first
    expect(row).to_contain_text("completion")
    screenshot(page, "app-list")


def test_app_list_reports_refusal_when_dsl_invalid(
    signed_in_page: Any, console_server: ConsoleServer, tmp_path: Any
) -> None:
    """A file that is not a DSL document is refused with the server's reason."""
    expect = _expect()
    bad = tmp_path / "bad.yml"
    bad.write_text("kind: app\napp: {mode: nonsense}\n", encoding="utf-8")
    page = signed_in_page
    page.get_by_label("DSL file (YAML)").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result .notice.error")).to_contain_text("Import refused")


def test_overview_creates_api_key_and_example_works(
    signed_in_page: Any, console_server: ConsoleServer
) -> None:
    """Overview shows the mode, creates an API key once, and its curl example names the key;
    the key really calls the service API."""
    expect = _expect()
    app_id = console_server.import_app("chat_food_calorie_planner.yml")
    page = signed_in_page
    page.goto(f"{console_server.url}/console/apps/{app_id}/overview")
    expect(page.locator("#ov-mode")).to_contain_text("chat")
    page.get_by_role("button", name="Create API key").click()
    key = page.locator("#new-api-key")
    expect(key).to_have_text(re.compile(r"^app-"))
    token = key.inner_text()
    assert token in page.get_by_label("Example request").input_value()
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        answer = client.post(
            "/v1/chat-messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"inputs": {}, "query": "hi", "response_mode": "blocking", "user": "u1"},
        )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("width", [375, 1440])
def test_console_pages_fit_screen_when_narrow_or_wide(
    signed_in_page: Any, console_server: ConsoleServer, width: int
) -> None:
    """Every page is readable without sideways scrolling at 375 px and 1440 px."""
    expect = _expect()
    chat = console_server.import_app("chat_food_calorie_planner.yml")
    workflow = console_server.import_app("workflow_audit_workpaper_kb_code.yml")
    page = signed_in_page
    page.set_viewport_size({"width": width, "height": 800})
    paths = ["/console/apps"] + [
        f"/console/apps/{app_id}/{tab}"
        for app_id in (chat, workflow)
        for tab in ("overview", "monitoring", "preview")
    ]
    for path in paths:
        page.goto(console_server.url + path)
        expect(page.locator("h1")).not_to_have_text("App")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path

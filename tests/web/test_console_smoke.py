"""Smoke tests: Playwright drives the installed Chromium, and the console pages are served."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import pytest

from .conftest import CHROMIUM, ConsoleServer


@pytest.mark.browser
def test_playwright_drives_installed_chromium(browser: Any, page: Any) -> None:
    """Playwright launches Debian's /usr/bin/chromium (same version as the installed binary
    reports), headless, and renders a page with it."""
    assert CHROMIUM.exists()
    assert browser.browser_type.name == "chromium"
    installed = subprocess.run(
        [str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert browser.version in installed
    page.set_content("<main><h1>opstrail</h1></main>")
    assert page.inner_text("h1") == "opstrail"
    user_agent = page.evaluate("navigator.userAgent")
    assert "HeadlessChrome" in user_agent or "Chrome" in user_agent


def test_console_pages_render_when_requested(console_server: ConsoleServer) -> None:
    """Every console page answers HTML with its heading and the shared script."""
    with httpx.Client(base_url=console_server.url, timeout=10) as client:
        signin = client.get("/console/signin")
        assert signin.status_code == 200
        assert "script-src 'self'" in signin.headers["content-security-policy"]
        assert "<script>" not in signin.text
        assert "text/html" in signin.headers["content-type"]
        assert 'label for="token"' in signin.text
        assert "/console/static/console.js" in signin.text
        apps = client.get("/console/apps")
        assert apps.status_code == 200 and "Import a Dify DSL file" in apps.text
        for tab, marker in (
            ("overview", "Create API key"),
            ("monitoring", "Tracing app performance"),
            ("preview", "Debug and preview"),
        ):
            answer = client.get(f"/console/apps/some-app/{tab}")
            assert answer.status_code == 200, tab
            assert marker in answer.text
            assert 'data-app-id="some-app"' in answer.text


def test_console_redirects_to_app_list_when_root_requested(console_server: ConsoleServer) -> None:
    """/console and an app's own URL redirect to the app list and the Overview tab."""
    with httpx.Client(base_url=console_server.url, timeout=10) as client:
        assert client.get("/console").headers["location"] == "/console/apps"
        assert client.get("/console/apps/a1").headers["location"] == "/console/apps/a1/overview"


def test_console_answers_404_when_page_or_file_unknown(console_server: ConsoleServer) -> None:
    """Unknown tabs and static names are 404s; static files come only from a fixed list."""
    with httpx.Client(base_url=console_server.url, timeout=10) as client:
        assert client.get("/console/apps/a1/settings").status_code == 404
        assert client.get("/console/static/secret.key").status_code == 404
        assert client.get("/console/static/..%2Fsettings.py").status_code == 404
        script = client.get("/console/static/console.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")


def test_console_escapes_app_id_when_rendering(console_server: ConsoleServer) -> None:
    """An app id with markup is escaped in the page, never executed."""
    with httpx.Client(base_url=console_server.url, timeout=10) as client:
        answer = client.get('/console/apps/"><script>alert(1)<%2Fscript>/overview')
    assert answer.status_code in (200, 404)
    assert "<script>alert(1)</script>" not in answer.text

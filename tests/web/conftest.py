"""Fixtures of the console tests: a real opstrail server, the local collector, a browser.

``console_server`` runs ``create_app`` under uvicorn in a thread on a free loopback port, with
its own temporary data dir. ``collector`` is engineer C's Langfuse-compatible receiver
(``opstrail.collector.testing.running_collector``). ``browser`` is Playwright driving
Debian's Chromium at /usr/bin/chromium, headless; without it browser tests skip with a clear
message, and under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstrail.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONSOLE_TOKEN = "test-console-token"
FIXTURES = Path(__file__).parent.parent / "fixtures"
SCREENSHOTS = Path(__file__).parent.parent.parent / "docs" / "screenshots"


def _missing(reason: str) -> None:
    """Skip locally; fail under CI=true, where every dependency must be present."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ConsoleServer:
    """A running opstrail server: its base URL and the settings it was started with."""

    url: str
    settings: Settings
    app: Any

    def api(self) -> httpx.Client:
        """An HTTP client for the console JSON API, signed in with the console token."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"},
            timeout=30,
        )

    def import_app(self, fixture: str) -> str:
        """Import ``tests/fixtures/dsl/<fixture>`` through the console API; the new app id."""
        yaml_content = (FIXTURES / "dsl" / fixture).read_text(encoding="utf-8")
        with self.api() as client:
            answer = client.post(
                "/console/api/apps/imports",
                json={"mode": "yaml-content", "yaml_content": yaml_content},
            )
        assert answer.status_code in (200, 201, 202), answer.text
        body = answer.json()
        return str(body.get("app_id") or body["id"])


def start_server(settings: Settings, *, timeout: float = 60.0) -> tuple[Any, threading.Thread, str]:
    """Start ``create_app(settings)`` under uvicorn in a daemon thread; wait until it answers."""
    import uvicorn

    from opstrail.api.app import create_app

    port = _free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/console/signin", timeout=2).status_code == 200:
                return server, thread, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the opstrail test server did not start")
        time.sleep(0.05)


@pytest.fixture(name="server_settings")
def _server_settings(tmp_path: Path) -> Settings:
    """Settings of a fresh server: own SQLite data dir, the test token, loopback-only hosts."""
    return Settings(
        data_dir=tmp_path / "server-data",
        console_token=CONSOLE_TOKEN,
        loopback_only_hosts=True,
        model_fallback="offline",
        dispatch_poll_interval=0.05,
        log_json=False,
    )


@pytest.fixture(name="console_server")
def _console_server(server_settings: Settings) -> Iterator[ConsoleServer]:
    """A real opstrail server on a free loopback port, stopped after the test."""
    server, thread, url = start_server(server_settings)
    try:
        yield ConsoleServer(url=url, settings=server_settings, app=server.config.app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(name="collector")
def _collector(tmp_path: Path) -> Iterator[Any]:
    """Engineer C's local Langfuse-compatible collector (keys pk-lf-test / sk-lf-test)."""
    try:
        from opstrail.collector.testing import running_collector
    except ImportError as exc:
        _missing(f"the local collector (opstrail.collector.testing) is not available: {exc}")
    with running_collector(data_dir=tmp_path / "collector") as handle:
        yield handle


@pytest.fixture(name="playwright_instance", scope="session")
def _playwright_instance() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"playwright (python) is not installed: {exc}")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(name="browser", scope="session")
def _browser(playwright_instance: Any) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(name="page")
def _page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page (1280x900), closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _sign_in(page: Any, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/console/signin")
    page.get_by_label("Console token").fill(CONSOLE_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/console/apps")


@pytest.fixture(name="signed_in_page")
def _signed_in_page(page: Any, console_server: ConsoleServer) -> Any:
    """A page signed in through the real sign-in form, on the app list."""
    _sign_in(page, console_server)
    return page


def _screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(name="screenshot")
def _screenshot_fixture() -> Any:
    """``screenshot(page, name)`` saves a full-page PNG as docs/screenshots/<name>.png."""
    return _screenshot

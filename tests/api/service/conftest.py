"""A real opstrail server (uvicorn on a free loopback port) with the embedded dispatcher,
a local Langfuse-compatible collector, and a local OpenAI-compatible stub model.

One server, collector and stub per module keep the suite fast; every test imports its own app,
so tests do not see each other's traces.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fakes.openai_stub import StubServer, running_openai_stub
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry
from opstrail.settings import Settings

CONSOLE_TOKEN = "test-console-token"
CONSOLE = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
LANGFUSE_KEYS = ("pk-lf-test", "sk-lf-test", "proj-test")


@dataclass
class Served:
    url: str
    app: Any  # the FastAPI app (its state holds the session factory)
    settings: Settings
    collector: CollectorHandle
    stub: StubServer
    http: httpx.Client

    def import_app(self, yaml_content: str, *, tracing: bool = True) -> tuple[str, dict[str, str]]:
        """Import an app, create its API key and (by default) trace it to the collector."""
        answer = self.http.post("/console/api/apps/imports", headers=CONSOLE,
                                json={"mode": "yaml-content", "yaml_content": yaml_content})
        assert answer.status_code == 200, answer.text
        app_id = answer.json()["app_id"]
        key = self.http.post(f"/console/api/apps/{app_id}/api-keys", headers=CONSOLE)
        assert key.status_code == 201, key.text
        if tracing:
            prefix = f"/console/api/apps/{app_id}"
            config = self.http.post(f"{prefix}/trace-config", headers=CONSOLE, json={
                "tracing_provider": "langfuse",
                "tracing_config": {"public_key": LANGFUSE_KEYS[0], "secret_key": LANGFUSE_KEYS[1],
                                   "host": self.collector.url}})
            assert config.status_code == 200, config.text
            enabled = self.http.post(f"{prefix}/trace", headers=CONSOLE,
                                     json={"enabled": True, "tracing_provider": "langfuse"})
            assert enabled.status_code == 200, enabled.text
        return app_id, {"Authorization": f"Bearer {key.json()['token']}"}

    def wait_trace(self, trace_id: str, *, observations: int = 1, timeout: float = 15.0) -> dict[str, Any]:
        """The collector's view of one trace once it holds ``observations`` observations
        (spans of one request may be stored one by one, so wait for the whole tree)."""
        def _ready() -> dict[str, Any] | None:
            trace = self.collector.trace(trace_id)
            if trace is None or len(trace["observations"]) < observations:
                return None
            return trace

        return self.collector.wait_for(_ready, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="served", scope="module")
def _served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import uvicorn

    from opstrail.api.app import create_app

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("chat-server"),
        console_token=CONSOLE_TOKEN,
        loopback_only_hosts=True,
        model_fallback="offline",
        dispatch_poll_interval=0.05,
        log_json=False,
    )
    with running_collector(keys=[LANGFUSE_KEYS]) as collector, running_openai_stub() as stub:
        app = create_app(settings)
        # The openai-family providers go to the stub; everything else falls back offline.
        app.state.model_registry = ModelRegistry(ModelOptions(
            openai_base_url=stub.url, openai_api_key="sk-stub", fallback="offline"))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", log_config=None))
        thread = threading.Thread(target=server.run, name="chat-test-server", daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the opstrail test server did not start")
            time.sleep(0.02)
        with httpx.Client(base_url=url, timeout=30) as client:
            try:
                yield Served(url, app, settings, collector, stub, client)
            finally:
                server.should_exit = True
                thread.join(timeout=10)
                app.state.model_registry.close()


def chat_yaml(
    *,
    name: str = "Helper",
    mode: str = "chat",
    provider: str = "langgenius/azure_openai/azure_openai",
    model: str = "gpt-41-mini",
    pre_prompt: str = "You are a helpful assistant for {{team}}.",
    form: str = "  - text-input:\n      label: Team\n      variable: team\n      required: true\n      max_length: 20\n",
    extra: str = "",
) -> str:
    """A small DSL document of a chat, agent-chat or completion app."""
    return (
        "app:\n"
        f"  name: {name}\n"
        f"  mode: {mode}\n"
        "kind: app\n"
        "version: 0.6.0\n"
        "model_config:\n"
        "  model:\n"
        f"    provider: {provider}\n"
        f"    name: {model}\n"
        "    mode: chat\n"
        "    completion_params:\n"
        "      temperature: 0.1\n"
        f"  pre_prompt: '{pre_prompt}'\n"
        "  opening_statement: Hello!\n"
        "  user_input_form:\n"
        f"{form}"
        f"{extra}"
    )

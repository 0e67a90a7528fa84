"""A local OpenAI-compatible chat-completions server for tests (127.0.0.1, free port).

It speaks the real wire protocol the ``openai`` package uses: ``POST /v1/chat/completions``
blocking (JSON) or streaming (SSE ``data:`` chunks ending with ``data: [DONE]``), usage in the
final chunk when ``stream_options.include_usage`` is set. Tests set ``answer``, ``usage``,
``tool_calls`` or a failure (``fail_status``) and read back ``requests``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StubState:
    answer: str = "Hello from the stub model. It answers every question the same way."
    prompt_tokens: int = 17
    completion_tokens: int = 11
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int | None = None
    fail_message: str = "upstream exploded"
    chunk_delay: float = 0.0  # seconds between streamed chunks (to test stop)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _chunk(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: StubState

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        # The client may stop reading (a stopped run): then there is nothing to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        state = self.state
        state.requests.append({"path": self.path, "body": body,
                               "authorization": self.headers.get("Authorization")})
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        if state.fail_status is not None:
            self._json(state.fail_status, {"error": {"message": state.fail_message, "type": "server_error"}})
            return
        usage = {"prompt_tokens": state.prompt_tokens, "completion_tokens": state.completion_tokens,
                 "total_tokens": state.prompt_tokens + state.completion_tokens}
        tool_calls = state.tool_calls if body.get("tools") else []
        base = {"id": "chatcmpl-stub", "created": 1_700_000_000, "model": body.get("model", "stub")}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else state.answer}
            if tool_calls:
                message["tool_calls"] = tool_calls
            self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message,
                 "finish_reason": "tool_calls" if tool_calls else "stop"}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk_base = {**base, "object": "chat.completion.chunk"}
        if tool_calls:
            deltas = [{"role": "assistant", "tool_calls": [
                {"index": i, "id": c["id"], "type": "function", "function": c["function"]}
                for i, c in enumerate(tool_calls)]}]
            finish = "tool_calls"
        else:
            words = state.answer.split(" ")
            deltas = [{"role": "assistant", "content": ""}] + [
                {"content": w + (" " if i < len(words) - 1 else "")} for i, w in enumerate(words)
            ]
            finish = "stop"
        for delta in deltas:
            if state.chunk_delay:
                time.sleep(state.chunk_delay)
            self.wfile.write(_chunk({**chunk_base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        self.wfile.write(_chunk({**chunk_base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            self.wfile.write(_chunk({**chunk_base, "choices": [], "usage": usage}))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@dataclass
class StubServer:
    url: str
    state: StubState


@contextmanager
def running_openai_stub() -> Iterator[StubServer]:
    """Run the stub on 127.0.0.1 and a free port; ``url`` is the base URL (``.../v1``)."""
    state = StubState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StubServer(f"http://127.0.0.1:{server.server_address[1]}/v1", state)
    finally:
        server.shutdown()
        server.server_close()

"""A scripted Langfuse stand-in over real HTTP on 127.0.0.1, for the exporter tests.

Tell it what to answer per path (``answer``, ``always``), then read what arrived
(``requests``, ``received``). Default answer: 200 ``{}``.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opstrail.exporters.base import Destination, IngestionPath


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON value, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> bytes:
        """The body, un-gzipped when it says it is gzipped."""
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.raw)
        return self.raw

    def json(self) -> Any:
        return json.loads(self.body)


# An answer, or a function of the request giving one (to answer a 207 per event).
Responder = Answer | Callable[[Received], Answer]


class ScriptedServer:
    """A tiny HTTP server answering from per-path queues and recording every request."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, deque[Responder]] = {}
        self._defaults: dict[str, Responder] = {}
        self.requests: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                received = Received(
                    self.command, path, {k.lower(): v for k, v in self.headers.items()}, raw
                )
                answer = server._take(path, received)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = (
                    answer.body
                    if isinstance(answer.body, bytes)
                    else json.dumps(answer.body).encode()
                )
                try:
                    self.send_response(answer.status)
                    content_type = (
                        "text/html" if isinstance(answer.body, bytes) else "application/json"
                    )
                    self.send_header("Content-Type", content_type)
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _take(self, path: str, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            queue = self._answers.get(path)
            answer = queue.popleft() if queue else self._defaults.get(path, Answer())
        return answer(received) if callable(answer) else answer

    def answer(self, path: str, *answers: Responder) -> None:
        """Answer the next requests to ``path`` with ``answers``, in order."""
        with self._lock:
            self._answers.setdefault(path, deque()).extend(answers)

    def always(self, path: str, answer: Responder) -> None:
        """Answer every request to ``path`` (after queued answers) with ``answer``."""
        with self._lock:
            self._defaults[path] = answer

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def destination_for(
    server: ScriptedServer, path: IngestionPath = IngestionPath.OTLP
) -> Destination:
    """A destination pointing at ``server`` with test keys."""
    return Destination(
        host=server.url,
        public_key="pk-lf-test",
        secret_key="sk-lf-test",
        project_id="proj-test",
        path=path,
    )

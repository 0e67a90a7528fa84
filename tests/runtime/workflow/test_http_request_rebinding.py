"""http-request and DNS rebinding: a target that passes ``check_url`` while its name resolves to
an allowed address, then resolves to a forbidden one when the node connects, is refused before
any socket is opened. Real sockets on loopback; the attacker's DNS server is a resolver whose
answers change between calls."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from exporters.recording import RecordingBackend
from opstrail.netguard import HostRules, check_request_target
from opstrail.services.workflows import guarded_outbound_http
from opstrail.tracing.info import WorkflowRunStatus

from .fakes import edge, node, run, start, workflow

pytestmark = pytest.mark.timeout(60)

NAME = "api.test"
REBINDING = "rebind.test"


@dataclass
class ChangingResolver:
    """Answers each host from its list of answers in turn, repeating the last one."""

    answers: dict[str, list[list[str]]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: Name or service not known")
        turns = self.answers[host]
        return turns.pop(0) if len(turns) > 1 else turns[0]


@dataclass
class Server:
    """A loopback HTTP server: ``/redirect?to=URL`` answers 302 to URL, any other path 200
    with the path and Host header it got as JSON."""

    port: int
    requests: list[tuple[str, str]]

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(name="server")
def _server() -> Iterator[Server]:
    requests: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append((self.path, self.headers.get("Host") or ""))
            target = parse_qs(urlsplit(self.path).query).get("to")
            if self.path.startswith("/redirect") and target:
                self.send_response(302)
                self.send_header("Location", target[0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps({"path": self.path, "host": self.headers.get("Host")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(port=httpd.server_address[1], requests=requests)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _get(url: str) -> dict[str, Any]:
    """A GET node whose error is kept as outputs (default-value), so its code can be read."""
    return workflow(
        [start("q"),
         node("call", "http-request", method="get", url=url, error_strategy="default-value",
              default_value=[]),
         node("end", "end", outputs=[
             {"variable": name, "value_selector": ["call", name]}
             for name in ("status_code", "body", "error_type", "error_message")])],
        [edge("start", "call"), edge("call", "end")])


def _run(url: str, rules: HostRules, backend: RecordingBackend, *,
         refused: bool) -> dict[str, Any]:
    """Run the node with ``check_url`` and the transport both judging by ``rules``, as the
    services layer wires them; returns the end node's outputs. A refused request is the
    node's handled error (the run partly succeeds)."""

    def check(target: str) -> str:
        return check_request_target(target, refuse_private=rules.refuse_private,
                                    loopback_only=rules.loopback_only, resolver=rules.resolver)

    outcome, _events, _engine = run(_get(url), inputs={"q": "x"}, check_url=check,
                                    outbound_http=guarded_outbound_http(rules, inner=backend))
    expected = WorkflowRunStatus.PARTIAL_SUCCEEDED if refused else WorkflowRunStatus.SUCCEEDED
    assert outcome.status == expected, outcome.outputs
    return dict(outcome.outputs)


def test_a_name_resolving_to_loopback_is_requested_at_its_checked_address(
    server: Server,
) -> None:
    """A normal request still works: the socket goes to the checked IP literal, and the
    server sees the URL's host name in the Host header."""
    resolver = ChangingResolver({NAME: [["127.0.0.1"]]})
    backend = RecordingBackend()

    outputs = _run(server.url(NAME, "/items?k=v"), HostRules(resolver=resolver), backend,
                   refused=False)

    assert outputs["status_code"] == 200, outputs.get("error_message")
    assert json.loads(outputs["body"]) == {"path": "/items?k=v",
                                           "host": f"{NAME}:{server.port}"}
    assert backend.connects == [("127.0.0.1", server.port)]


def test_a_name_that_rebinds_to_metadata_after_the_check_is_refused_without_connecting(
    server: Server,
) -> None:
    """check_url sees 127.0.0.1, the connection would go to 169.254.169.254: the node fails
    with ssrf_refused, naming the address and the rule, and no socket is opened."""
    resolver = ChangingResolver({REBINDING: [["127.0.0.1"], ["169.254.169.254"]]})
    backend = RecordingBackend()
    url = server.url(REBINDING, "/items")

    outputs = _run(url, HostRules(resolver=resolver), backend, refused=True)

    assert outputs["error_type"] == "ssrf_refused"
    message = outputs["error_message"]
    assert f"request to {url} refused when connecting" in message
    assert "169.254.169.254" in message
    assert "cloud metadata endpoint" in message
    assert resolver.calls == [REBINDING, REBINDING]  # once at check, once at connect
    assert backend.connects == []
    assert server.requests == []


def test_a_public_name_that_rebinds_to_a_private_address_is_refused_under_refuse_private(
) -> None:
    """With private networks refused, a name that passed as a public address and then answers
    10.1.2.3 is refused at connect time; nothing is connected to (no server is needed)."""
    resolver = ChangingResolver({REBINDING: [["93.184.216.34"], ["10.1.2.3"]]})
    backend = RecordingBackend()

    outputs = _run(f"http://{REBINDING}/items",
                   HostRules(refuse_private=True, resolver=resolver), backend, refused=True)

    assert outputs["error_type"] == "ssrf_refused"
    assert "10.1.2.3" in outputs["error_message"]
    assert "private network" in outputs["error_message"]
    assert backend.connects == []


def test_a_redirect_to_a_name_that_rebinds_is_refused_at_connect_time(server: Server) -> None:
    """The redirect target passes check_url as 127.0.0.1 and then answers 169.254.169.254:
    only the first request reaches the server, and the node fails with ssrf_refused."""
    resolver = ChangingResolver({NAME: [["127.0.0.1"]],
                                 REBINDING: [["127.0.0.1"], ["169.254.169.254"]]})
    backend = RecordingBackend()
    landing = server.url(REBINDING, "/landing")

    outputs = _run(server.url(NAME, f"/redirect?to={landing}"), HostRules(resolver=resolver),
                   backend, refused=True)

    assert outputs["error_type"] == "ssrf_refused"
    assert f"request to {landing} refused when connecting" in outputs["error_message"]
    assert "169.254.169.254" in outputs["error_message"]
    assert backend.connects == [("127.0.0.1", server.port)]
    assert [path for path, _host in server.requests] == [f"/redirect?to={landing}"]


def test_without_a_guarded_transport_the_node_fails_instead_of_sending(server: Server) -> None:
    """An environment built without ``outbound_http`` gets no unchecked client: the node
    fails with ssrf_refused and the server sees nothing."""
    outcome, _events, _engine = run(_get(server.url("127.0.0.1", "/items")),
                                    inputs={"q": "x"}, outbound_http=None)

    assert outcome.status == WorkflowRunStatus.PARTIAL_SUCCEEDED
    outputs = outcome.outputs
    assert outputs["error_type"] == "ssrf_refused"
    assert "no guarded HTTP transport" in outputs["error_message"]
    assert server.requests == []

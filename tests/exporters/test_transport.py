"""The guarded transport: every connection the exporters open goes to an address netguard
checked, over real sockets on loopback (DNS rebinding is played by a resolver that changes its
answer between save time and send time)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from exporters.certs import self_signed
from exporters.recording import RecordingBackend
from exporters.server import Answer, ScriptedServer, destination_for
from exporters.trees import chat_trace
from opstrail.collector.testing import running_collector
from opstrail.delivery.policy import RetrySchedule, decide
from opstrail.errors import TracingConfigError
from opstrail.exporters.base import Destination, Outcome
from opstrail.exporters.otlp.exporter import OTLP_PATH, OtlpExporter
from opstrail.exporters.probe import HEALTH_PATH, check_credentials, probe_server
from opstrail.exporters.registry import ExporterRegistry, exporter_for
from opstrail.exporters.transport import (
    DestinationRefused,
    GuardedTransport,
    guarded_client,
    rules_from_settings,
)
from opstrail.netguard import HostRules, check_host_url
from opstrail.settings import Settings

pytestmark = pytest.mark.timeout(60)

NAME = "langfuse.test"


@pytest.fixture(autouse=True)
def _no_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests prove the guarded path, which a proxy in the environment would bypass."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class SwitchingResolver:
    """A resolver whose answers the test changes (the attacker's DNS server)."""

    answers: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: Name or service not known")
        return self.answers[host]


def _named(server: ScriptedServer, name: str = NAME) -> Destination:
    """The server's destination, addressed by ``name`` instead of 127.0.0.1."""
    destination = destination_for(server)
    return replace(destination, host=destination.host.replace("127.0.0.1", name))


def _exporter(rules: HostRules, backend: RecordingBackend) -> OtlpExporter:
    transport = GuardedTransport(rules, inner=backend)
    return OtlpExporter(httpx.Client(timeout=5.0, transport=transport), timeout=5.0)


def test_send_is_refused_without_connecting_when_name_rebinds_to_metadata(
    langfuse: ScriptedServer,
) -> None:
    """Saved while it resolved to 127.0.0.1, the name later answers 169.254.169.254: the send
    is refused before any socket is opened, and the message names the address and the rule."""
    resolver = SwitchingResolver({NAME: ["127.0.0.1"]})
    rules = HostRules(resolver=resolver)
    destination = _named(langfuse)
    saved = check_host_url(
        destination.host, refuse_private=False, loopback_only=False, resolver=resolver
    )
    assert saved == destination.host

    resolver.answers[NAME] = ["169.254.169.254"]
    backend = RecordingBackend()
    exporter = _exporter(rules, backend)
    try:
        result = exporter.export([chat_trace()], destination)
    finally:
        exporter.close()

    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert "169.254.169.254" in result.message
    assert "cloud metadata endpoint" in result.message
    assert backend.connects == []
    assert langfuse.requests == []
    action = decide(
        result.outcome,
        attempt=1,
        batch_size=1,
        jitter=0.0,
        schedule=RetrySchedule(),
        status_code=result.status_code,
    )
    assert (action.code, action.state) == ("unreachable", "unreachable")


def test_send_reaches_a_loopback_collector_at_the_checked_address(
    langfuse: ScriptedServer,
) -> None:
    """A name resolving to 127.0.0.1 is delivered, and the socket went to the literal address
    the guard checked (nothing resolved it again)."""
    resolver = SwitchingResolver({NAME: ["127.0.0.1"]})
    backend = RecordingBackend()
    exporter = _exporter(HostRules(resolver=resolver), backend)
    destination = _named(langfuse)
    try:
        assert exporter.export([chat_trace()], destination).outcome is Outcome.DELIVERED
    finally:
        exporter.close()
    port = int(destination.host.rsplit(":", 1)[1])
    assert backend.connects == [("127.0.0.1", port)]
    assert [r.path for r in langfuse.requests] == [OTLP_PATH]
    assert langfuse.requests[0].headers["host"] == f"{NAME}:{port}"


def test_keep_alive_reuses_the_checked_connection_when_sending_again() -> None:
    """Resolution and check happen per new connection: three sends to a keep-alive server
    (the collector) make one lookup and one connect."""
    resolver = SwitchingResolver({NAME: ["127.0.0.1"]})
    backend = RecordingBackend()
    exporter = _exporter(HostRules(resolver=resolver), backend)
    with running_collector() as collector:
        destination = Destination(
            host=f"http://{NAME}:{collector.port}",
            public_key="pk-lf-test",
            secret_key="sk-lf-test",
            project_id="proj-test",
        )
        try:
            for _ in range(3):
                assert exporter.export([chat_trace()], destination).outcome is Outcome.DELIVERED
        finally:
            exporter.close()
        assert collector.requests()["otel"] == 3
    assert resolver.calls == [NAME]
    assert backend.connects == [("127.0.0.1", collector.port)]


@pytest.mark.parametrize(
    ("rules_answer", "fragment"),
    [
        (["10.1.2.3"], "private network"),
        (["18.197.0.1", "100.64.0.1"], "private network"),
    ],
)
def test_send_is_refused_when_name_rebinds_to_a_private_network_and_refuse_private(
    rules_answer: list[str], fragment: str
) -> None:
    """With refuse_private, a name saved with a public address that now answers a private one
    (even as its second address) is refused without a connection."""
    resolver = SwitchingResolver({NAME: ["18.197.0.1"]})
    host = f"https://{NAME}"
    assert check_host_url(host, refuse_private=True, loopback_only=False, resolver=resolver)
    resolver.answers[NAME] = rules_answer
    backend = RecordingBackend()
    exporter = _exporter(HostRules(refuse_private=True, resolver=resolver), backend)
    destination = Destination(host=host, public_key="pk", secret_key="sk", project_id="p")
    try:
        result = exporter.export([chat_trace()], destination)
    finally:
        exporter.close()
    assert result.outcome is Outcome.RETRY
    assert fragment in result.message
    assert "OPSTRAIL_REFUSE_PRIVATE_HOSTS" in result.message
    assert backend.connects == []


def test_loopback_only_connects_localhost_to_127_0_0_1_without_resolving(
    langfuse: ScriptedServer,
) -> None:
    """Loopback-only (tests): localhost reaches 127.0.0.1 and no resolver is asked; another
    name, or a non-loopback literal, is refused without a connection."""
    resolver = SwitchingResolver({})
    rules = HostRules(loopback_only=True, resolver=resolver)
    backend = RecordingBackend()
    exporter = _exporter(rules, backend)
    try:
        assert (
            exporter.export([chat_trace()], _named(langfuse, "localhost")).outcome
            is Outcome.DELIVERED
        )
        for host in ("http://10.1.2.3:9", f"http://{NAME}:9"):
            destination = Destination(host=host, public_key="pk", secret_key="sk")
            result = exporter.export([chat_trace()], destination)
            assert result.outcome is Outcome.RETRY
            assert "Only loopback hosts are allowed" in result.message
    finally:
        exporter.close()
    assert resolver.calls == []
    assert [host for host, _ in backend.connects] == ["127.0.0.1"]


def test_scores_go_through_the_guard_too(langfuse: ScriptedServer) -> None:
    """Score calls share the exporter's client, so a rebound name is refused for them too."""
    resolver = SwitchingResolver({NAME: ["169.254.10.1"]})
    backend = RecordingBackend()
    exporter = _exporter(HostRules(resolver=resolver), backend)
    try:
        result = exporter.delete_score("s" * 32, _named(langfuse))
    finally:
        exporter.close()
    assert result.outcome is Outcome.RETRY
    assert "link-local" in result.message
    assert backend.connects == []


def test_exporter_for_applies_the_rules_it_is_given(langfuse: ScriptedServer) -> None:
    """exporter_for and the registry build guarded, owned clients: refuse_private refuses a
    loopback collector; the default rules reach it; close() closes the client."""
    rules = rules_from_settings(Settings(refuse_private_hosts=True))
    refusing = exporter_for(destination_for(langfuse), timeout=5.0, rules=rules)
    try:
        result = refusing.export([chat_trace()], destination_for(langfuse))
    finally:
        refusing.close()
    assert result.outcome is Outcome.RETRY
    assert "127.0.0.1 is on a private network" in result.message
    assert refusing._client.is_closed  # type: ignore[attr-defined]
    registry = ExporterRegistry(timeout=5.0, rules=HostRules())
    try:
        otlp = registry.get(destination_for(langfuse))
        assert otlp.export([chat_trace()], destination_for(langfuse)).outcome is Outcome.DELIVERED
    finally:
        registry.close()
    assert [r.path for r in langfuse.requests] == [OTLP_PATH]


def test_default_exporter_refuses_a_metadata_address_without_connecting() -> None:
    """An exporter built without a client still guards: metadata is refused at once (a real
    connect to 169.254.169.254 would wait for the timeout or reach the metadata service)."""
    exporter = OtlpExporter(timeout=httpx.Timeout(30.0))
    destination = Destination(host="http://169.254.169.254", public_key="pk", secret_key="sk")
    try:
        result = exporter.export([chat_trace()], destination)
    finally:
        exporter.close()
    assert result.outcome is Outcome.RETRY
    assert "cloud metadata endpoint" in result.message


def test_client_raises_destination_refused_as_a_connect_error_when_refused() -> None:
    """The typed error is an httpx.ConnectError, so generic handlers still treat it as one."""
    resolver = SwitchingResolver({NAME: ["0.0.0.0"]})
    with (
        guarded_client(HostRules(resolver=resolver), timeout=5.0) as client,
        pytest.raises(DestinationRefused) as caught,
    ):
        client.get(f"http://{NAME}:9/")
    assert isinstance(caught.value, httpx.ConnectError)
    assert caught.value.host == NAME
    assert "not a routable address" in caught.value.reason


def test_unresolvable_name_is_an_ordinary_connect_error() -> None:
    """A name that stops resolving is a plain connection failure, not a refusal."""
    with (
        guarded_client(HostRules(resolver=SwitchingResolver({})), timeout=5.0) as client,
        pytest.raises(httpx.ConnectError) as caught,
    ):
        client.get(f"http://{NAME}:9/")
    assert not isinstance(caught.value, DestinationRefused)
    assert "does not resolve" in str(caught.value)


def test_validation_reports_invalid_host_when_name_rebinds_between_check_and_probe(
    langfuse: ScriptedServer,
) -> None:
    """Validation (check_credentials, probe_server) over a guarded client refuses a name that
    resolves to a forbidden address when connecting: invalid_host, or a probe warning."""
    resolver = SwitchingResolver({NAME: ["169.254.169.254"]})
    host = _named(langfuse).host
    with guarded_client(HostRules(resolver=resolver), timeout=5.0) as client:
        with pytest.raises(TracingConfigError) as caught:
            check_credentials(host, "pk", "sk", client=client)
        server = probe_server(host, client=client)
    assert caught.value.code == "invalid_host"
    assert "169.254.169.254" in caught.value.message
    assert server.warning is not None and "cloud metadata endpoint" in server.warning
    assert langfuse.requests == []


# --- TLS: the certificate is checked against the name, not the address ------------------------


@dataclass
class TlsServer:
    server: ScriptedServer
    trust: ssl.SSLContext
    sni: list[str | None]

    def url(self, name: str) -> str:
        return self.server.url.replace("127.0.0.1", name)


@pytest.fixture(name="tls")
def _tls(tmp_path: Path) -> Iterator[TlsServer]:
    """A TLS server on 127.0.0.1 whose certificate names only langfuse.test; records SNI."""
    cert_file, key_file = self_signed(tmp_path, NAME, dns_name=NAME)
    sni: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    context.sni_callback = record_sni  # type: ignore[assignment]
    server = ScriptedServer(tls=context)
    server.answer(HEALTH_PATH, Answer(200, {"version": "4.16.0"}))
    server.start()
    try:
        yield TlsServer(server, ssl.create_default_context(cafile=str(cert_file)), sni)
    finally:
        server.stop()


def test_tls_verifies_the_certificate_against_the_name_when_connecting_to_the_address(
    tls: TlsServer,
) -> None:
    """The socket goes to 127.0.0.1, yet SNI and the hostname check use langfuse.test: the
    certificate (which names no IP address) verifies."""
    backend = RecordingBackend()
    rules = HostRules(resolver=SwitchingResolver({NAME: ["127.0.0.1"]}))
    transport = GuardedTransport(rules, verify=tls.trust, inner=backend)
    with httpx.Client(timeout=5.0, transport=transport) as client:
        assert probe_server(tls.url(NAME), client=client).version == "4.16.0"
    assert [host for host, _ in backend.connects] == ["127.0.0.1"]
    assert tls.sni == [NAME]


def test_tls_refuses_a_certificate_for_another_name_at_the_same_address(tls: TlsServer) -> None:
    """Another name resolving to the same checked address fails the hostname check."""
    other = "other.test"
    rules = HostRules(resolver=SwitchingResolver({other: ["127.0.0.1"]}))
    with (
        guarded_client(rules, timeout=5.0, verify=tls.trust) as client,
        pytest.raises(httpx.ConnectError) as caught,
    ):
        client.get(tls.url(other) + HEALTH_PATH)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert tls.sni == [other]
    assert tls.server.requests == []


def test_guarded_client_uses_an_environment_proxy_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Behind a corporate proxy, delivery goes through the proxy (which resolves the name);
    without one, every connection is checked."""
    from opstrail.exporters.transport import GuardedTransport, guarded_client
    from opstrail.netguard import HostRules

    with guarded_client(HostRules(), timeout=1.0) as client:
        assert isinstance(client._transport, GuardedTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    with guarded_client(HostRules(), timeout=1.0) as client:
        assert not isinstance(client._transport, GuardedTransport)
        assert client._mounts  # httpx mounted the environment's proxy

"""The test harness itself: handle helpers, persistence and key parsing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opstrail.collector.config import CollectorConfig, KeyPair, read_keys_file
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.errors import ConfigError

from .otlp_requests import LLM_ID, ROOT_ID, TRACE_ID, chat_spans, export_request

HEADERS = {"content-type": "application/x-protobuf"}


def _send(client: httpx.Client) -> None:
    body = export_request(chat_spans()).SerializeToString()
    assert (
        client.post("/api/public/otel/v1/traces", content=body, headers=HEADERS).status_code == 200
    )


def test_handle_cheap_counts_follow_received_copies(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """trace_ids, observation_ids and copy_count reflect duplicates without decoding records."""
    _send(client)
    _send(client)
    assert collector.trace_ids() == {TRACE_ID}
    assert collector.observation_ids() == {ROOT_ID, LLM_ID}
    assert collector.copy_count() == 4


def test_handle_clear_forgets_data_and_counts(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """clear() empties traces, scores and request counts."""
    _send(client)
    client.post("/api/public/scores", json={"name": "x", "value": 1})
    collector.clear()
    assert (collector.traces(), collector.scores(), collector.requests()) == ([], [], {})


def test_handle_wait_for_raises_timeout_when_condition_never_holds(
    collector: CollectorHandle,
) -> None:
    """wait_for gives up with TimeoutError instead of hanging."""
    with pytest.raises(TimeoutError):
        collector.wait_for(lambda c: c.traces(), timeout=0.1)


def test_handle_wait_for_returns_value_when_condition_holds(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """wait_for returns the first truthy value of the predicate."""
    _send(client)
    traces = collector.wait_for(lambda: collector.traces(), timeout=5)
    assert traces[0]["id"] == TRACE_ID


def test_otlp_drops_attributes_when_key_has_prototype_segment(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Keys with __proto__/constructor/prototype segments are dropped, as Langfuse does."""
    spans = chat_spans()[:1]
    spans[0].attributes["a.__proto__.b"] = "x"
    spans[0].attributes["safe.key"] = "y"
    body = export_request(spans).SerializeToString()
    client.post("/api/public/otel/v1/traces", content=body, headers=HEADERS)
    attributes = collector.observations()[0]["attributes"]
    assert "a.__proto__.b" not in attributes
    assert attributes["safe.key"] == "y"


def test_running_collector_accepts_key_strings_and_tuples_without_project() -> None:
    """Keys may be 'pk:sk:project' strings, tuples with None (no project) or '!org'."""
    with running_collector(keys=["pk-s:sk-s:proj-s", ("pk-n", "sk-n", None)]) as collector:
        string_pair = httpx.get(collector.url + "/api/public/projects", auth=("pk-s", "sk-s"))
        no_project = httpx.get(collector.url + "/api/public/projects", auth=("pk-n", "sk-n"))
    assert string_pair.json()["data"][0]["id"] == "proj-s"
    assert no_project.json() == {"data": []}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pk:sk", KeyPair("pk", "sk", "local")),
        ("pk:sk:proj", KeyPair("pk", "sk", "proj")),
        ("pk:sk:", KeyPair("pk", "sk", None)),
        ("pk:sk:!org", KeyPair("pk", "sk", None, organization_key=True)),
    ],
)
def test_key_pair_parse_reads_project_forms(spec: str, expected: KeyPair) -> None:
    """pk:sk gets the default project; an empty project means none; !org an org key."""
    assert KeyPair.parse(spec) == expected


def test_read_keys_file_skips_comments_and_refuses_bad_lines(tmp_path: Path) -> None:
    """The keys file holds one pair a line; a malformed line is a ConfigError."""
    good = tmp_path / "keys"
    good.write_text("# local keys\npk-a:sk-a:proj-a\n\npk-b:sk-b:\n")
    assert [k.project_id for k in read_keys_file(good)] == ["proj-a", None]
    bad = tmp_path / "bad"
    bad.write_text("only-public\n")
    with pytest.raises(ConfigError):
        read_keys_file(bad)


def test_collector_config_refuses_unparsable_version() -> None:
    """A version that is not like 4.16.0 is refused at construction."""
    with pytest.raises(ConfigError):
        CollectorConfig(langfuse_version="latest")


def test_collector_url_accepts_connections_before_serving_starts(tmp_path: Path) -> None:
    """The printed URL is connectable at once: `opstrail collector` prints it before serving.

    A bound socket that is not yet listening refuses connections, which made a client that
    read the URL quickly fail with "connection refused" (seen in CI).
    """
    import socket

    from opstrail.collector.app import create_collector_app
    from opstrail.collector.server import CollectorServer

    server = CollectorServer(
        create_collector_app(CollectorConfig(data_dir=tmp_path)), host="127.0.0.1", port=0
    )
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    finally:
        server.state.store.close()

"""Where traces go: the resolver decrypts at send time, and the whole chain (policy, outbox,
dispatcher, resolver) delivers to a real local collector."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from config.factories import GOOD_KEYS, console, langfuse_body
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.config.destinations import ConfigDestinationResolver
from opstrail.config.tracing_config import recording_settings
from opstrail.exporters.base import IngestionPath
from opstrail.services.trace_recording import record_trace
from opstrail.settings import Settings
from opstrail.tracing import samples


@pytest.fixture(name="collector", scope="module")
def _collector() -> Iterator[CollectorHandle]:
    with running_collector(keys=[GOOD_KEYS]) as handle:
        yield handle


def test_resolver_gives_destination_only_when_enabled(
    settings: Settings, collector: CollectorHandle
) -> None:
    """None while unconfigured or disabled; the decrypted destination once enabled; None again
    after the config is removed."""
    with console(settings) as (client, app_id):
        prefix = f"/console/api/apps/{app_id}"
        factory = client.app.state.session_factory  # type: ignore[attr-defined]
        resolver = ConfigDestinationResolver(settings)
        with factory() as session:
            assert resolver.resolve(session, app_id) is None
        client.post(f"{prefix}/trace-config", json=langfuse_body(collector.url))
        with factory() as session:
            assert resolver.resolve(session, app_id) is None
            assert recording_settings(session, app_id).enabled is False
        client.post(f"{prefix}/trace", json={"enabled": True, "tracing_provider": "langfuse"})
        with factory() as session:
            destination = resolver.resolve(session, app_id)
            assert recording_settings(session, app_id).enabled is True
        assert destination is not None
        assert (destination.host, destination.public_key, destination.secret_key) == (
            collector.url,
            *GOOD_KEYS[:2],
        )
        assert destination.project_id == "proj-test"
        assert destination.path == IngestionPath.OTLP
        assert GOOD_KEYS[1] not in repr(destination)
        client.delete(f"{prefix}/trace-config")
        with factory() as session:
            assert resolver.resolve(session, app_id) is None


def test_metadata_only_run_reaches_collector_without_content_when_delivered(
    settings: Settings, collector: CollectorHandle
) -> None:
    """A run recorded under metadata-only is delivered by the embedded dispatcher through the
    resolver, and the collector receives its trace without the user's query or the answer."""
    with console(settings, dispatcher=True) as (client, app_id):
        prefix = f"/console/api/apps/{app_id}"
        body = {**langfuse_body(collector.url), "policy": {"content_mode": "metadata-only"}}
        assert client.post(f"{prefix}/trace-config", json=body).status_code == 200
        assert client.post(f"{prefix}/trace", json={"enabled": True}).status_code == 200
        message_id = samples.sample_uuid("k-privacy-run")
        info = samples.chat_message(
            message_id=message_id,
            context=samples.run_context(app_id=app_id),
            query="My card is 4111 1111 1111 1111, QUERYMARK-K",
        )
        with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
            record_trace(session, settings, info)
            session.commit()
        trace_id = message_id.replace("-", "")
        trace = collector.wait_for(lambda c: c.trace(trace_id), timeout=20)
        received = json.dumps(trace)
        assert "QUERYMARK-K" not in received
        assert "4111" not in received
        assert str(info.outputs) not in received
        assert len(trace["observations"]) >= 2
        status = collector.wait_for(
            lambda: (s := client.get(f"{prefix}/trace-status").json())["delivered"] >= 1 and s,
            timeout=20,
        )
        assert status["state"] == "started"

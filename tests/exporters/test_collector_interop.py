"""The exporters against opstrail's own Langfuse-compatible collector, over loopback HTTP.

The collector is written apart from the exporters (it shares no code with them), so these
tests catch a wire mistake that both the encoder and its own round-trip checks could share.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from exporters.trees import built_traces
from opstrail import ids
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.errors import TracingConfigError
from opstrail.exporters.base import Destination, IngestionPath, Outcome
from opstrail.exporters.legacy.exporter import LegacyExporter
from opstrail.exporters.otlp.exporter import OtlpExporter
from opstrail.exporters.probe import check_credentials
from opstrail.tracing.tree import Score, Trace

pytestmark = pytest.mark.timeout(120)

KEYS = (
    ("pk-lf-test", "sk-lf-test", "proj-test"),
    "pk-lf-none:sk-lf-none:",
    "pk-lf-org:sk-lf-org:!org",
)


def _destination(collector: CollectorHandle, path: IngestionPath) -> Destination:
    return Destination(
        host=collector.url,
        public_key="pk-lf-test",
        secret_key="sk-lf-test",
        project_id="proj-test",
        path=path,
    )


@pytest.fixture(name="v4")
def _v4() -> Iterator[CollectorHandle]:
    """A collector imitating Langfuse 4.16.0."""
    with running_collector(keys=KEYS) as collector:
        yield collector


@pytest.fixture(name="v2")
def _v2() -> Iterator[CollectorHandle]:
    """A collector imitating Langfuse 2.95.12 (legacy path only)."""
    with running_collector(keys=KEYS, langfuse_version="2.95.12") as collector:
        yield collector


def _check_common(received: dict[str, Any], trace: Trace) -> None:
    assert received["name"] == trace.name
    assert received.get("userId") == trace.user_id
    assert received.get("sessionId") == trace.session_id
    assert sorted(received["tags"]) == sorted(trace.tags)


def test_otlp_traces_arrive_complete_in_a_v4_collector(v4: CollectorHandle) -> None:
    """Every built sample arrives over OTLP with its fields, types, parents, usage and cost."""
    traces = built_traces()
    exporter = OtlpExporter()
    try:
        result = exporter.export(traces, _destination(v4, IngestionPath.OTLP))
    finally:
        exporter.close()
    assert result.outcome is Outcome.DELIVERED
    v4.wait_for(lambda c: len(c.traces()) == len(traces), timeout=10)
    for trace in traces:
        received = v4.trace(trace.id)
        assert received is not None and not received["shallow"]
        _check_common(received, trace)
        assert received["environment"] == trace.environment
        for key, value in trace.metadata.items():
            if value is not None and isinstance(value, str | int | bool):
                assert received["metadata"][key] == value
        observations = {o["id"]: o for o in v4.observations(trace_id=trace.id)}
        assert set(observations) == {o.id for o in trace.observations}
        for obs in trace.observations:
            got = observations[obs.id]
            assert got["type"] == obs.type.value.upper()
            assert got.get("parentObservationId") == obs.parent_id
            assert got["level"] == obs.level.value
            assert got.get("statusMessage") == obs.status_message
            assert got.get("model") == obs.model
            if obs.usage is not None:
                assert got["usageDetails"]["total"] == obs.usage.total
            if obs.cost is not None:
                assert got["costDetails"]["total"] == pytest.approx(obs.cost.total)
            if obs.parent_id is not None and obs.input is not None:
                expected = (
                    obs.input if isinstance(obs.input, str) else json.loads(json.dumps(obs.input))
                )
                assert got["input"] == expected


def test_legacy_traces_arrive_in_a_v2_collector(v2: CollectorHandle) -> None:
    """Over the legacy path a v2 server gets every observation, v2 types plus the intended one."""
    traces = built_traces()
    exporter = LegacyExporter()
    try:
        result = exporter.export(traces, _destination(v2, IngestionPath.LEGACY))
    finally:
        exporter.close()
    assert result.outcome is Outcome.DELIVERED, result.message
    for trace in traces:
        received = v2.trace(trace.id)
        assert received is not None
        _check_common(received, trace)
        observations = {o["id"]: o for o in v2.observations(trace_id=trace.id)}
        assert set(observations) == {o.id for o in trace.observations}
        for obs in trace.observations:
            got = observations[obs.id]
            assert got["type"] in ("SPAN", "GENERATION", "EVENT")
            if got["type"] != obs.type.value.upper():
                assert got["metadata"]["observation_type"] == obs.type.value
            assert got["metadata"]["environment"] == trace.environment
            assert got.get("parentObservationId") == obs.parent_id


def test_legacy_path_on_a_v4_collector_reads_wrong_path(v4: CollectorHandle) -> None:
    """A v4 server in events_only mode refuses legacy trace events: WRONG_PATH, nothing stored."""
    trace = built_traces()[0]
    exporter = LegacyExporter()
    try:
        result = exporter.export([trace], _destination(v4, IngestionPath.LEGACY))
    finally:
        exporter.close()
    assert result.outcome_of(trace.id) is Outcome.WRONG_PATH
    assert v4.trace(trace.id) is None


def test_scores_are_created_and_deleted_in_the_collector(v4: CollectorHandle) -> None:
    """A feedback score lands with its id and value; a delete removes it."""
    trace = built_traces()[0]
    score = Score(
        id=ids.score_id("m1"),
        trace_id=trace.id,
        name="user-feedback",
        value=1,
        data_type="BOOLEAN",
        timestamp=datetime(2026, 8, 22, 10, 5, tzinfo=UTC),
        comment="thanks",
    )
    exporter = OtlpExporter()
    destination = _destination(v4, IngestionPath.OTLP)
    try:
        assert exporter.export_score(score, destination).outcome is Outcome.DELIVERED
        (stored,) = v4.scores()
        assert (stored["id"], stored["value"], stored["traceId"]) == (score.id, 1, trace.id)
        assert exporter.delete_score(score.id, destination).outcome is Outcome.DELIVERED
        assert v4.scores() == []
        assert exporter.delete_score(score.id, destination).outcome is Outcome.DELIVERED
    finally:
        exporter.close()


def test_check_credentials_against_the_collector(v4: CollectorHandle, v2: CollectorHandle) -> None:
    """Project found and path chosen per version; missing project, org key and bad keys named."""
    with httpx.Client(timeout=5.0) as client:
        project = check_credentials(v4.url, "pk-lf-test", "sk-lf-test", client=client)
        assert project.project_id == "proj-test"
        assert project.server.path is IngestionPath.OTLP
        assert check_credentials(v2.url, "pk-lf-test", "sk-lf-test", client=client).server.path is (
            IngestionPath.LEGACY
        )
        for public_key, secret_key, code in (
            ("pk-lf-none", "sk-lf-none", "no_project"),
            ("pk-lf-org", "sk-lf-org", "organization_key"),
            ("pk-lf-test", "wrong", "unauthorized"),
        ):
            with pytest.raises(TracingConfigError) as caught:
                check_credentials(v4.url, public_key, secret_key, client=client)
            assert caught.value.code == code


def test_probe_without_version_falls_back_to_otlp_with_a_warning() -> None:
    """A server whose health has no version (a proxy) is probed as OTLP with a warning."""
    with running_collector(keys=KEYS, report_version=False) as collector, httpx.Client() as client:
        project = check_credentials(collector.url, "pk-lf-test", "sk-lf-test", client=client)
    assert project.server.path is IngestionPath.OTLP
    assert project.server.warning

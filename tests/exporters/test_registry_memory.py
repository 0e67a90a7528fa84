"""The exporter registry (one client per destination) and the in-memory exporter."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from exporters.server import ScriptedServer, destination_for
from exporters.trees import chat_trace, workflow_trace
from opstrail.errors import DeliveryError
from opstrail.exporters.base import Destination, ExportResult, IngestionPath, Outcome, TraceResult
from opstrail.exporters.legacy.exporter import INGESTION_PATH, LegacyExporter
from opstrail.exporters.memory import InMemoryExporter
from opstrail.exporters.otlp.exporter import OTLP_PATH, OtlpExporter
from opstrail.exporters.registry import ExporterRegistry, exporter_for
from opstrail.tracing.tree import Score

pytestmark = pytest.mark.timeout(60)

DEST = Destination(host="http://127.0.0.1:9", public_key="pk", secret_key="sk", project_id="p")


def test_exporter_for_follows_the_destination_path() -> None:
    """OTLP destinations get an OtlpExporter, legacy ones a LegacyExporter."""
    otlp = exporter_for(DEST)
    legacy = exporter_for(replace(DEST, path=IngestionPath.LEGACY))
    try:
        assert isinstance(otlp, OtlpExporter)
        assert isinstance(legacy, LegacyExporter)
    finally:
        otlp.close()
        legacy.close()


def test_registry_keeps_one_exporter_per_destination() -> None:
    """The same destination gets the same exporter; another destination its own."""
    registry = ExporterRegistry()
    try:
        first = registry.get(DEST)
        assert registry.get(DEST) is first
        other = registry.get(replace(DEST, project_id="q"))
        assert other is not first
        assert first._client is not other._client  # type: ignore[attr-defined]
    finally:
        registry.close()


def test_registry_replaces_the_exporter_when_the_path_changes() -> None:
    """A destination re-probed to legacy gets a legacy exporter; the old one is closed."""
    registry = ExporterRegistry()
    try:
        old = registry.get(DEST)
        new = registry.get(replace(DEST, path=IngestionPath.LEGACY))
        assert isinstance(new, LegacyExporter)
        assert old._client.is_closed  # type: ignore[attr-defined]
    finally:
        registry.close()


def test_registry_close_closes_clients_and_refuses_more() -> None:
    """close() closes every client; get() afterwards raises DeliveryError."""
    registry = ExporterRegistry()
    exporter = registry.get(DEST)
    registry.close()
    assert exporter._client.is_closed  # type: ignore[attr-defined]
    with pytest.raises(DeliveryError):
        registry.get(DEST)


def test_registry_exporters_really_send(langfuse: ScriptedServer) -> None:
    """Registry exporters reach the destination on their path."""
    registry = ExporterRegistry(timeout=5.0)
    try:
        otlp = registry.get(destination_for(langfuse))
        assert otlp.export([chat_trace()], destination_for(langfuse)).outcome is Outcome.DELIVERED
        legacy_destination = replace(
            destination_for(langfuse, IngestionPath.LEGACY), project_id="l"
        )
        registry.get(legacy_destination).export([chat_trace()], legacy_destination)
    finally:
        registry.close()
    assert [r.path for r in langfuse.requests] == [OTLP_PATH, INGESTION_PATH]


def _score() -> Score:
    return Score(
        id="s" * 32,
        trace_id=chat_trace().id,
        name="user-feedback",
        value=1,
        data_type="BOOLEAN",
        timestamp=datetime(2026, 8, 22, tzinfo=UTC),
    )


def test_in_memory_exporter_records_delivered_traces_and_scores() -> None:
    """By default every call is delivered and recorded."""
    exporter = InMemoryExporter()
    trace = chat_trace()
    assert exporter.export([trace], DEST).outcome is Outcome.DELIVERED
    assert exporter.delivered_traces == {trace.id: trace}
    assert exporter.export_score(_score(), DEST).outcome is Outcome.DELIVERED
    assert set(exporter.scores) == {"s" * 32}
    assert exporter.delete_score("s" * 32, DEST).outcome is Outcome.DELIVERED
    assert exporter.scores == {}
    assert [c.kind for c in exporter.calls] == ["export", "export_score", "delete_score"]


def test_in_memory_exporter_answers_queued_outcomes_then_the_default() -> None:
    """Queued answers are used once each, in order; then the default applies."""
    exporter = InMemoryExporter()
    exporter.queue([Outcome.UNAUTHORIZED, ExportResult(Outcome.RATE_LIMITED, retry_after=2.0)])
    exporter.answer_with(Outcome.RETRY)
    trace = chat_trace()
    assert exporter.export([trace], DEST).outcome is Outcome.UNAUTHORIZED
    assert exporter.export([trace], DEST).retry_after == 2.0
    assert exporter.export([trace], DEST).outcome is Outcome.RETRY
    assert exporter.delivered_traces == {}
    assert exporter.trace_ids_sent() == [trace.id] * 3


def test_in_memory_exporter_records_only_traces_delivered_in_a_partial_answer() -> None:
    """With a per-trace answer, only the delivered traces count as delivered."""
    good, bad = chat_trace(), workflow_trace(3)
    exporter = InMemoryExporter(
        ExportResult(
            Outcome.REJECTED,
            traces={
                good.id: TraceResult(good.id, Outcome.DELIVERED),
                bad.id: TraceResult(bad.id, Outcome.REJECTED, "bad"),
            },
        )
    )
    exporter.export([good, bad], DEST)
    assert set(exporter.delivered_traces) == {good.id}

"""Scores over the scores API, the same on both paths."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from exporters.openapi import validate_schema
from exporters.server import Answer, ScriptedServer, destination_for
from opstrail import ids
from opstrail.exporters.base import IngestionPath, Outcome
from opstrail.exporters.legacy.exporter import LegacyExporter
from opstrail.exporters.otlp.exporter import OtlpExporter
from opstrail.exporters.scores import SCORES_PATH, score_body
from opstrail.tracing.tree import Score

pytestmark = pytest.mark.timeout(60)

MESSAGE_ID = "3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b"


def _score(**changes: object) -> Score:
    values: dict[str, object] = {
        "id": ids.score_id(MESSAGE_ID),
        "trace_id": ids.trace_id(MESSAGE_ID),
        "name": "user-feedback",
        "value": 1,
        "data_type": "BOOLEAN",
        "timestamp": datetime(2026, 8, 22, 10, 5, tzinfo=UTC),
        "comment": "great answer",
        "environment": "production",
        "metadata": {"rating": "like", "from_end_user_id": "u1"},
    }
    values.update(changes)
    return Score(**values)  # type: ignore[arg-type]


def test_score_body_matches_create_score_request() -> None:
    """The body is a valid CreateScoreRequest with the deterministic id and BOOLEAN type."""
    body = score_body(_score())
    validate_schema(body, "CreateScoreRequest")
    assert body["id"] == ids.score_id(MESSAGE_ID)
    assert body["traceId"] == ids.trace_id(MESSAGE_ID)
    assert body["dataType"] == "BOOLEAN"
    assert body["value"] == 1
    assert body["comment"] == "great answer"
    assert body["environment"] == "production"
    assert body["metadata"]["rating"] == "like"
    assert body["metadata"]["timestamp"] == "2026-08-22T10:05:00.000000Z"


@pytest.mark.parametrize("exporter_type", [OtlpExporter, LegacyExporter])
def test_export_score_posts_to_the_scores_api_on_both_paths(
    langfuse: ScriptedServer, client: httpx.Client, exporter_type: type
) -> None:
    """Both exporters POST the score with Basic auth to /api/public/scores."""
    langfuse.answer(SCORES_PATH, Answer(200, {"id": ids.score_id(MESSAGE_ID)}))
    result = exporter_type(client).export_score(_score(), destination_for(langfuse))
    assert result.outcome is Outcome.DELIVERED
    (request,) = langfuse.received(SCORES_PATH)
    assert request.method == "POST"
    assert request.headers["authorization"].startswith("Basic ")
    assert request.json() == score_body(_score())


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (404, Outcome.DELIVERED),
        (401, Outcome.UNAUTHORIZED),
        (500, Outcome.RETRY),
    ],
)
def test_delete_score_treats_absent_as_deleted(
    langfuse: ScriptedServer, client: httpx.Client, status: int, outcome: Outcome
) -> None:
    """DELETE /api/public/scores/{id}; a 404 (already gone) counts as delivered."""
    score_id = ids.score_id(MESSAGE_ID)
    path = f"{SCORES_PATH}/{score_id}"
    langfuse.answer(path, Answer(status, {"message": "x"}))
    destination = destination_for(langfuse, IngestionPath.LEGACY)
    result = LegacyExporter(client).delete_score(score_id, destination)
    assert result.outcome is outcome
    assert [(r.method, r.path) for r in langfuse.requests] == [("DELETE", path)]


def test_export_score_rate_limited_keeps_retry_after(
    langfuse: ScriptedServer, client: httpx.Client
) -> None:
    """A 429 on a score is RATE_LIMITED with Retry-After."""
    langfuse.answer(SCORES_PATH, Answer(429, {"message": "slow down"}, {"Retry-After": "3"}))
    result = OtlpExporter(client).export_score(_score(), destination_for(langfuse))
    assert (result.outcome, result.retry_after) == (Outcome.RATE_LIMITED, 3.0)

"""Feedback scores over ``POST /api/public/scores`` and ``DELETE /api/public/scores/{id}``.

Both ingestion paths use these endpoints (decisions.md, "Scores"): they exist on every Langfuse
version and are still open in v4 ``events_only`` mode.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from opstrail.exporters.base import Destination, ExportResult, Outcome
from opstrail.exporters.fields import iso_z, json_bytes
from opstrail.exporters.http import auth_headers, result_for_status, send, url
from opstrail.tracing.tree import Score

SCORES_PATH = "/api/public/scores"


def score_body(score: Score) -> dict[str, Any]:
    """The ``CreateScoreRequest`` body of ``score``.

    The score's ``timestamp`` has no field in this request (the server stamps it); it is kept
    in ``metadata.timestamp`` so it is not lost.
    """
    body: dict[str, Any] = {
        "id": score.id,
        "traceId": score.trace_id,
        "name": score.name,
        "value": score.value,
        "dataType": score.data_type,
        "environment": score.environment,
    }
    if score.observation_id is not None:
        body["observationId"] = score.observation_id
    if score.comment is not None:
        body["comment"] = score.comment
    metadata: dict[str, Any] = dict(score.metadata)
    metadata.setdefault("timestamp", iso_z(score.timestamp))
    body["metadata"] = metadata
    return body


def post_score(
    client: httpx.Client,
    score: Score,
    destination: Destination,
    *,
    timeout: httpx.Timeout | float | None = None,
) -> ExportResult:
    """Create or replace ``score`` (same id, name and day replace the earlier one)."""
    headers = {**auth_headers(destination), "Content-Type": "application/json"}
    response = send(
        client,
        "POST",
        url(destination, SCORES_PATH),
        headers=headers,
        content=json_bytes(score_body(score)),
        timeout=timeout,
    )
    if isinstance(response, ExportResult):
        return response
    return result_for_status(response, not_found_is_wrong_path=False)


def delete_score(
    client: httpx.Client,
    score_id: str,
    destination: Destination,
    *,
    timeout: httpx.Timeout | float | None = None,
) -> ExportResult:
    """Delete one score; a score that is already gone (404) counts as delivered."""
    response = send(
        client,
        "DELETE",
        url(destination, f"{SCORES_PATH}/{quote(score_id, safe='')}"),
        headers=auth_headers(destination),
        timeout=timeout,
    )
    if isinstance(response, ExportResult):
        return response
    if response.status_code == 404:
        return ExportResult(Outcome.DELIVERED, status_code=404, message="score already absent")
    return result_for_status(response, not_found_is_wrong_path=False)

"""Scores API: create, upsert by id, delete, validation and the 1 MB limit."""

from __future__ import annotations

import httpx
import pytest

from opstrail.collector.testing import CollectorHandle

PATH = "/api/public/scores"
SCORE_ID = "9d4c1f0e2b3a4c5d6e7f8091a2b3c4d5"


def test_scores_create_answers_id_and_stores_score(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """A valid score is stored and its id returned."""
    response = client.post(
        PATH,
        json={
            "id": SCORE_ID,
            "traceId": "t" * 32,
            "name": "user-feedback",
            "value": 1,
            "dataType": "BOOLEAN",
            "comment": "nice",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"id": SCORE_ID}
    [score] = collector.scores()
    assert (score["id"], score["value"], score["comment"], score["dataType"]) == (
        SCORE_ID,
        1,
        "nice",
        "BOOLEAN",
    )
    assert score["projectId"] == "proj-test"


def test_scores_create_replaces_score_when_id_is_reused(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Sending the same score id again replaces the stored score (upsert)."""
    client.post(
        PATH, json={"id": SCORE_ID, "name": "user-feedback", "value": 1, "dataType": "BOOLEAN"}
    )
    client.post(
        PATH, json={"id": SCORE_ID, "name": "user-feedback", "value": 0, "dataType": "BOOLEAN"}
    )
    assert [(s["id"], s["value"]) for s in collector.scores()] == [(SCORE_ID, 0)]


def test_scores_create_generates_id_when_absent(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Without an id the collector assigns one and answers it."""
    response = client.post(PATH, json={"name": "quality", "value": 0.7})
    assert response.json()["id"] == collector.scores()[0]["id"]


def test_scores_delete_removes_score_when_it_exists(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """DELETE answers 204 and the score is gone; a second DELETE answers 404."""
    client.post(PATH, json={"id": SCORE_ID, "name": "user-feedback", "value": 1})
    assert client.delete(f"{PATH}/{SCORE_ID}").status_code == 204
    assert collector.scores() == []
    assert client.delete(f"{PATH}/{SCORE_ID}").status_code == 404


def test_scores_delete_answers_404_when_score_belongs_to_another_project(
    collector: CollectorHandle, client: httpx.Client
) -> None:
    """Another project's keys cannot delete a score."""
    client.post(PATH, json={"id": SCORE_ID, "name": "user-feedback", "value": 1})
    other = httpx.delete(f"{collector.url}{PATH}/{SCORE_ID}", auth=("pk-lf-other", "sk-lf-other"))
    assert other.status_code == 404
    assert len(collector.scores()) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"value": 1},
        {"name": "x"},
        {"name": "x", "value": 2, "dataType": "BOOLEAN"},
        {"name": "x", "value": "good", "dataType": "NUMERIC"},
        {"name": "x", "value": 1, "dataType": "STARS"},
    ],
)
def test_scores_create_answers_400_when_body_is_invalid(
    collector: CollectorHandle, client: httpx.Client, body: dict[str, object]
) -> None:
    """Missing name/value, wrong value for the data type and unknown types are 400s."""
    response = client.post(PATH, json=body)
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid request data"
    assert collector.scores() == []


def test_scores_create_answers_413_when_body_exceeds_1_mb(client: httpx.Client) -> None:
    """Scores above 1 MB are refused."""
    response = client.post(PATH, json={"name": "x", "value": 1, "comment": "c" * 1_100_000})
    assert response.status_code == 413


def test_scores_create_answers_401_when_keys_are_wrong(collector: CollectorHandle) -> None:
    """Writes need valid keys."""
    response = httpx.post(
        f"{collector.url}{PATH}", json={"name": "x", "value": 1}, auth=("pk-lf-test", "bad")
    )
    assert response.status_code == 401
    assert collector.scores() == []

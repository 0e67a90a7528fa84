"""Health, readiness and the credential check (/api/public/projects)."""

from __future__ import annotations

import httpx

from opstrail.collector.testing import CollectorHandle, running_collector


def test_health_answers_version_without_auth(collector: CollectorHandle) -> None:
    """Health needs no key and reports the imitated version."""
    response = httpx.get(f"{collector.url}/api/public/health")
    assert response.status_code == 200
    assert response.json() == {"status": "OK", "version": "4.16.0"}


def test_health_reports_configured_version_when_imitating_v3() -> None:
    """The imitated version is what health reports."""
    with running_collector(langfuse_version="3.225.4") as collector:
        body = httpx.get(f"{collector.url}/api/public/health").json()
    assert body["version"] == "3.225.4"


def test_ready_answers_ok(client: httpx.Client) -> None:
    """Readiness answers 200 OK."""
    response = client.get("/api/public/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "OK"


def test_projects_lists_project_when_keys_are_valid(client: httpx.Client) -> None:
    """A valid pair resolves to its project and organization."""
    response = client.get("/api/public/projects")
    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "id": "proj-test",
                "name": "proj-test",
                "organization": {"id": "org-local", "name": "local"},
                "metadata": {},
            }
        ]
    }


def test_projects_refuses_with_host_hint_when_secret_is_wrong(
    collector: CollectorHandle,
) -> None:
    """A wrong secret gets 401 with Langfuse's host hint."""
    response = httpx.get(f"{collector.url}/api/public/projects", auth=("pk-lf-test", "nope"))
    assert response.status_code == 401
    assert response.json()["message"].endswith("Confirm that you've configured the correct host.")


def test_projects_refuses_when_authorization_is_missing(collector: CollectorHandle) -> None:
    """No Authorization header is a 401."""
    response = httpx.get(f"{collector.url}/api/public/projects")
    assert response.status_code == 401


def test_projects_answers_empty_list_when_pair_has_no_project(
    collector: CollectorHandle,
) -> None:
    """A pair configured without a project answers an empty data list."""
    response = httpx.get(f"{collector.url}/api/public/projects", auth=("pk-lf-none", "sk-lf-none"))
    assert response.status_code == 200
    assert response.json() == {"data": []}


def test_projects_answers_403_when_key_is_an_organization_key(
    collector: CollectorHandle,
) -> None:
    """An organization key gets Langfuse's 403 text."""
    response = httpx.get(f"{collector.url}/api/public/projects", auth=("pk-lf-org", "sk-lf-org"))
    assert response.status_code == 403
    assert response.json() == {"message": "Invalid API key. Are you using an organization key?"}


def test_requests_counts_each_endpoint(collector: CollectorHandle, client: httpx.Client) -> None:
    """The handle counts answered requests per endpoint."""
    client.get("/api/public/health")
    client.get("/api/public/projects")
    client.get("/api/public/projects")
    assert collector.requests() == {"health": 1, "projects": 2}


def test_health_omits_version_when_told_to_act_as_proxy() -> None:
    """report_version=False answers health without a version (a proxy in front of Langfuse)."""
    with running_collector(report_version=False) as collector:
        body = httpx.get(f"{collector.url}/api/public/health").json()
    assert body == {"status": "OK"}


def test_health_answers_503_when_no_recent_events_are_required_and_none_arrived(
    collector: CollectorHandle,
) -> None:
    """?failIfNoRecentEvents=true answers 503 while nothing arrived."""
    response = httpx.get(f"{collector.url}/api/public/health?failIfNoRecentEvents=true")
    assert response.status_code == 503

"""PostgreSQL: full-text retrieval (to_tsvector / ts_rank) and chat storage."""

from __future__ import annotations

import pytest

from opstrail.services.datasets import StoredRetriever, create_dataset_from_texts
from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema
from opstrail.storage.tenancy import ensure_default_tenant

pytestmark = pytest.mark.postgres


def test_postgres_search_ranks_matching_chunks_first(postgres_url: str, settings: Settings) -> None:
    """On PostgreSQL the retriever finds the chunk sharing the query's words, best first,
    and warns about a dataset id that does not exist."""
    engine = make_engine(settings.model_copy(update={"database_url": postgres_url}))
    try:
        ensure_schema(engine)
        factory = make_session_factory(engine)
        with factory() as session:
            tenant_id, _account = ensure_default_tenant(session)
            session.commit()
            summary = create_dataset_from_texts(session, tenant_id=tenant_id, name="Pg", documents=[
                ("rivers.txt", "The Nile is the longest river in Africa."),
                ("cats.txt", "Cats sleep for most of the day."),
                ("mixed.txt", "A river cruise on the Nile at night."),
            ])
        retriever = StoredRetriever(factory, app_id="no-app", tenant_id=tenant_id)
        documents, warnings = retriever.retrieve(
            "longest river Nile", [summary.id, "0a1b2c3d-0000-4000-8000-0000000000ee"], top_k=2)
        assert [d.document_name for d in documents] == ["rivers.txt", "mixed.txt"]
        assert documents[0].score == 1.0
        assert warnings == ["dataset 0a1b2c3d-0000-4000-8000-0000000000ee does not exist; nothing retrieved from it"]
    finally:
        engine.dispose()


def test_postgres_chat_message_is_stored_with_its_trace(postgres_url: str, settings: Settings) -> None:
    """On PostgreSQL a chat message, its history, its feedback and its outbox rows are stored."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from api.service.conftest import CONSOLE, chat_yaml
    from opstrail.api.app import create_app
    from opstrail.storage.tables.outbox import OutboxRow

    server_settings = settings.model_copy(update={
        "database_url": postgres_url, "model_fallback": "offline", "embedded_dispatcher": False})
    with TestClient(create_app(server_settings)) as client:
        app_id = client.post("/console/api/apps/imports", headers=CONSOLE, json={
            "mode": "yaml-content", "yaml_content": chat_yaml()}).json()["app_id"]
        token = client.post(f"/console/api/apps/{app_id}/api-keys", headers=CONSOLE).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = client.post("/v1/chat-messages", headers=headers, json={
            "inputs": {"team": "pg"}, "query": "hello postgres", "user": "pat",
            "response_mode": "blocking"}).json()
        liked = client.post(f"/v1/messages/{body['message_id']}/feedbacks", headers=headers,
                            json={"rating": "dislike", "user": "pat"})
        assert liked.status_code == 200
        history = client.get("/v1/messages", headers=headers, params={
            "user": "pat", "conversation_id": body["conversation_id"]}).json()["data"]
        assert [(m["query"], m["feedback"]) for m in history] == [("hello postgres", {"rating": "dislike"})]
        with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
            kinds = sorted(r.kind for r in session.scalars(
                select(OutboxRow).where(OutboxRow.app_id == app_id)))
        assert kinds == ["generate_name", "message", "score"]

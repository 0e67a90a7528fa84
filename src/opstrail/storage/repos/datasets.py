"""Datasets, documents and chunks, with full-text search.

SQLite: FTS5 table ``dataset_chunks_fts`` (BM25 via ``bm25()``), kept in step with
``dataset_chunks`` by these functions. PostgreSQL: ``to_tsvector('simple', content)`` with
``ts_rank``. Scores are mapped to (0, 1], higher is better, so a DSL score threshold means the
same on both backends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from opstrail.storage.tables.datasets import AppDatasetLink, Dataset, DatasetChunk, DatasetDocument

_WORD_RE: Final = re.compile(r"[\u4e00-\u9fff]|[^\W_]+", re.UNICODE)
MAX_QUERY_TERMS: Final = 32


@dataclass(frozen=True, slots=True)
class ChunkHit:
    chunk_id: str
    dataset_id: str
    dataset_name: str
    document_id: str
    document_name: str
    position: int
    content: str
    score: float


def create_dataset(session: Session, *, tenant_id: str, name: str, dataset_id: str | None = None,
                   description: str = "") -> Dataset:
    dataset = Dataset(id=dataset_id or str(uuid.uuid4()), tenant_id=tenant_id, name=name,
                      description=description)
    session.add(dataset)
    session.flush()
    return dataset


def get_dataset(session: Session, *, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def list_datasets(session: Session, *, tenant_id: str) -> list[Dataset]:
    return list(session.scalars(select(Dataset).where(Dataset.tenant_id == tenant_id).order_by(Dataset.created_at)))


def add_document(session: Session, *, dataset_id: str, name: str, chunks: Sequence[str]) -> DatasetDocument:
    """Store a document and its chunks, and index the chunks."""
    document = DatasetDocument(id=str(uuid.uuid4()), dataset_id=dataset_id, name=name,
                               char_count=sum(len(c) for c in chunks))
    session.add(document)
    session.flush()
    sqlite = session.get_bind().dialect.name == "sqlite"
    for position, content in enumerate(chunks, start=1):
        chunk = DatasetChunk(id=str(uuid.uuid4()), dataset_id=dataset_id, document_id=document.id,
                             position=position, content=content)
        session.add(chunk)
        if sqlite:
            session.flush()
            session.execute(
                text("INSERT INTO dataset_chunks_fts (content, chunk_id, dataset_id) VALUES (:c, :i, :d)"),
                {"c": content, "i": chunk.id, "d": dataset_id},
            )
    session.flush()
    return document


def count_chunks(session: Session, *, dataset_id: str) -> int:
    return len(list(session.scalars(select(DatasetChunk.id).where(DatasetChunk.dataset_id == dataset_id))))


def delete_dataset(session: Session, *, dataset_id: str) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DELETE FROM dataset_chunks_fts WHERE dataset_id = :d"), {"d": dataset_id})
    session.execute(delete(DatasetChunk).where(DatasetChunk.dataset_id == dataset_id))
    session.execute(delete(DatasetDocument).where(DatasetDocument.dataset_id == dataset_id))
    session.execute(delete(Dataset).where(Dataset.id == dataset_id))


def query_terms(query: str) -> list[str]:
    """The search words of a query (lowercased, deduplicated, at most 32)."""
    seen: list[str] = []
    for word in _WORD_RE.findall(query.lower()):
        if word not in seen:
            seen.append(word)
    return seen[:MAX_QUERY_TERMS]


def search(session: Session, *, dataset_ids: Sequence[str], query: str, top_k: int) -> list[ChunkHit]:
    """Best chunks for ``query`` across ``dataset_ids``, best first."""
    terms = query_terms(query)
    if not terms or not dataset_ids:
        return []
    dialect = session.get_bind().dialect.name
    ids = list(dataset_ids)
    params: dict[str, object] = {"k": top_k}
    placeholders = []
    for index, dataset_id in enumerate(ids):
        params[f"d{index}"] = dataset_id
        placeholders.append(f":d{index}")
    in_list = ", ".join(placeholders)
    if dialect == "sqlite":
        params["q"] = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = session.execute(
            text(
                "SELECT chunk_id, bm25(dataset_chunks_fts) AS rank FROM dataset_chunks_fts "
                f"WHERE dataset_chunks_fts MATCH :q AND dataset_id IN ({in_list}) "
                "ORDER BY rank LIMIT :k"
            ),
            params,
        ).all()
        # bm25() is negative, more negative is better.
        scored = [(row[0], -float(row[1])) for row in rows]
    else:
        params["q"] = " | ".join(re.sub(r"[^\w]", "", t) for t in terms if re.sub(r"[^\w]", "", t))
        if not params["q"]:
            return []
        rows = session.execute(
            text(
                "SELECT id, ts_rank(to_tsvector('simple', content), to_tsquery('simple', :q)) AS rank "
                f"FROM dataset_chunks WHERE dataset_id IN ({in_list}) "
                "AND to_tsvector('simple', content) @@ to_tsquery('simple', :q) "
                "ORDER BY rank DESC LIMIT :k"
            ),
            params,
        ).all()
        scored = [(row[0], float(row[1]) * 10) for row in rows]
    if not scored:
        return []
    chunks = {c.id: c for c in session.scalars(select(DatasetChunk).where(DatasetChunk.id.in_([s[0] for s in scored])))}
    documents = {d.id: d for d in session.scalars(
        select(DatasetDocument).where(DatasetDocument.id.in_({c.document_id for c in chunks.values()})))}
    datasets = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(ids)))}
    hits: list[ChunkHit] = []
    for chunk_id, _rank in scored:
        chunk = chunks.get(chunk_id)
        if chunk is None:
            continue
        document = documents.get(chunk.document_id)
        dataset = datasets.get(chunk.dataset_id)
        hits.append(ChunkHit(
            chunk_id=chunk.id, dataset_id=chunk.dataset_id,
            dataset_name=dataset.name if dataset else "", document_id=chunk.document_id,
            document_name=document.name if document else "", position=chunk.position,
            content=chunk.content, score=_coverage(terms, chunk.content),
        ))
    return hits


def _coverage(terms: Sequence[str], content: str) -> float:
    # Ranking is BM25 (or ts_rank); the reported score is the share of query words the chunk
    # holds, in [0, 1], because raw BM25 values depend on corpus size and mean nothing to a
    # DSL score threshold.
    words = set(_WORD_RE.findall(content.lower()))
    return round(sum(1 for t in terms if t in words) / len(terms), 4) if terms else 0.0


def set_app_links(session: Session, *, app_id: str, links: dict[str, str | None]) -> None:
    """Record how each DSL dataset id of an app resolves (replacing earlier links)."""
    session.execute(delete(AppDatasetLink).where(AppDatasetLink.app_id == app_id))
    for dsl_id, dataset_id in links.items():
        session.add(AppDatasetLink(id=str(uuid.uuid4()), app_id=app_id, dsl_dataset_id=dsl_id,
                                   dataset_id=dataset_id))
    session.flush()


def app_links(session: Session, *, app_id: str) -> dict[str, str | None]:
    return {
        row.dsl_dataset_id: row.dataset_id
        for row in session.scalars(select(AppDatasetLink).where(AppDatasetLink.app_id == app_id))
    }

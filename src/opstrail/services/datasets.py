"""Knowledge bases: create from a directory (txt, md, pdf) or from texts; the retriever that
chat runs use.

Documents are split into chunks of about ``CHUNK_CHARS`` characters on paragraph boundaries
and indexed for full-text search (SQLite FTS5 BM25, PostgreSQL ts_rank).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy.orm import Session

from opstrail.errors import ConflictError, ValidationError
from opstrail.ids import new_uuid
from opstrail.storage.repos import datasets as dataset_repo
from opstrail.tracing.info import RetrievedDocument

CHUNK_CHARS: Final = 800
SUFFIXES: Final = (".txt", ".md", ".markdown", ".pdf")
MAX_FILE_BYTES: Final = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    id: str
    name: str
    documents: int
    chunks: int
    skipped: tuple[str, ...] = ()


def chunk_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Split text into chunks of at most ``size`` characters, on paragraph then sentence
    boundaries; never returns empty chunks."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        sentences = re.split(r"(?<=[.!?。！？])\s*", paragraph)
        current = ""
        for sentence in sentences:
            while len(sentence) > size:
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(sentence[:size])
                sentence = sentence[size:]
            if len(current) + len(sentence) + 1 > size and current:
                pieces.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}".strip()
        if current:
            pieces.append(current)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(piece) + 2 > size:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def read_document(path: Path) -> str:
    """Text of a txt, md or pdf file.

    Raises:
        ValidationError: unsupported type, too large, or unreadable.
    """
    if path.suffix.lower() not in SUFFIXES:
        raise ValidationError(f"{path.name}: only {', '.join(SUFFIXES)} files are supported")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationError(f"{path.name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(str(path))
            return "\n\n".join((page.extract_text() or "") for page in reader.pages)
        except (PdfReadError, OSError, ValueError) as exc:
            raise ValidationError(f"{path.name}: cannot read the PDF: {exc}") from exc
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="utf-8", errors="replace")


def _check_new(session: Session, dataset_id: str | None) -> str:
    if dataset_id is not None:
        try:
            dataset_id = str(uuid.UUID(dataset_id))
        except ValueError as exc:
            raise ValidationError(f"dataset id {dataset_id!r} is not a UUID") from exc
        if dataset_repo.get_dataset(session, dataset_id=dataset_id) is not None:
            raise ConflictError(f"dataset {dataset_id} already exists", code="dataset_exists")
        return dataset_id
    return new_uuid()


def create_dataset_from_texts(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    documents: Sequence[tuple[str, str]],
    dataset_id: str | None = None,
) -> DatasetSummary:
    """Create a dataset from ``(document name, text)`` pairs and commit.

    Raises:
        ValidationError: no name, or no document with text.
        ConflictError: ``dataset_id`` exists already.
    """
    if not name.strip():
        raise ValidationError("a dataset needs a name")
    new_id = _check_new(session, dataset_id)
    chunked = [(doc_name, chunk_text(text)) for doc_name, text in documents]
    chunked = [(doc_name, chunks) for doc_name, chunks in chunked if chunks]
    if not chunked:
        raise ValidationError("no document has any text to index")
    dataset = dataset_repo.create_dataset(session, tenant_id=tenant_id, name=name.strip(), dataset_id=new_id)
    total = 0
    for doc_name, chunks in chunked:
        dataset_repo.add_document(session, dataset_id=dataset.id, name=doc_name, chunks=chunks)
        total += len(chunks)
    session.commit()
    return DatasetSummary(dataset.id, dataset.name, len(chunked), total)


def create_dataset_from_dir(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    directory: Path,
    dataset_id: str | None = None,
) -> DatasetSummary:
    """Create a dataset from every txt/md/pdf file under ``directory`` and commit.

    Raises:
        ValidationError: not a directory, or no readable document in it.
        ConflictError: ``dataset_id`` exists already.
    """
    if not directory.is_dir():
        raise ValidationError(f"{directory} is not a directory")
    documents: list[tuple[str, str]] = []
    skipped: list[str] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix.lower() not in SUFFIXES:
            skipped.append(f"{path.name}: unsupported type")
            continue
        try:
            documents.append((str(path.relative_to(directory)), read_document(path)))
        except ValidationError as exc:
            skipped.append(exc.message)
    if not documents:
        raise ValidationError(f"{directory} holds no txt, md or pdf file with text")
    summary = create_dataset_from_texts(
        session, tenant_id=tenant_id, name=name, documents=documents, dataset_id=dataset_id
    )
    return DatasetSummary(summary.id, summary.name, summary.documents, summary.chunks, tuple(skipped))


class StoredRetriever:
    """``runtime.ports.Retriever`` over the local datasets linked to one app.

    DSL dataset ids resolve through the app's links (made at import); an id with no local
    dataset retrieves nothing and yields a warning. Opens its own short session per search.
    """

    def __init__(self, session_factory: Callable[[], Session], *, app_id: str, tenant_id: str) -> None:
        self._session_factory = session_factory
        self._app_id = app_id
        self._tenant_id = tenant_id

    def retrieve(
        self, query: str, dataset_ids: Sequence[str], *, top_k: int = 4,
        score_threshold: float | None = None,
    ) -> tuple[list[RetrievedDocument], list[str]]:
        warnings: list[str] = []
        with self._session_factory() as session:
            links = dataset_repo.app_links(session, app_id=self._app_id)
            local: list[str] = []
            for dsl_id in dataset_ids:
                target = links.get(dsl_id, dsl_id) if dsl_id in links else dsl_id
                dataset = dataset_repo.get_dataset(session, dataset_id=target) if target else None
                if dataset is None or dataset.tenant_id != self._tenant_id:
                    warnings.append(f"dataset {dsl_id} does not exist; nothing retrieved from it")
                    continue
                local.append(dataset.id)
            hits = dataset_repo.search(session, dataset_ids=local, query=query, top_k=top_k)
        documents = [
            RetrievedDocument(
                content=hit.content,
                score=hit.score,
                dataset_id=hit.dataset_id,
                dataset_name=hit.dataset_name,
                document_id=hit.document_id,
                document_name=hit.document_name,
                segment_id=hit.chunk_id,
                position=index + 1,
            )
            for index, hit in enumerate(hits)
            if score_threshold is None or hit.score >= score_threshold
        ]
        return documents, warnings

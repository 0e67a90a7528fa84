"""SQLite storage of everything the collector received; one connection behind a lock.

Every received copy of an observation is kept (Langfuse v4 stores re-sent spans as
duplicates), with a fingerprint so readers can tell identical re-sends from changed ones.
Trace records are kept as copies too (from OTLP root spans, trace-wide attributes of other
spans, legacy ``trace-create`` events) and merged when read, the way Langfuse merges them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS observation_copies (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    id TEXT NOT NULL,
    trace_id TEXT,
    source TEXT NOT NULL,
    is_copy INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_obs_trace ON observation_copies (project_id, trace_id);
CREATE INDEX IF NOT EXISTS ix_obs_id ON observation_copies (project_id, id);
CREATE TABLE IF NOT EXISTS trace_copies (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_trace_id ON trace_copies (project_id, id);
CREATE TABLE IF NOT EXISTS scores (
    project_id TEXT NOT NULL,
    id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);
"""


def fingerprint(record: Mapping[str, Any]) -> str:
    """A stable hash of a record's content, to tell identical copies apart from changed ones."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ObservationCopy:
    """One received copy of an observation (an OTLP span or a legacy event)."""

    project_id: str
    id: str
    trace_id: str | None
    source: str
    is_copy: bool
    received_at: str
    data: dict[str, Any]
    fingerprint: str


@dataclass(frozen=True, slots=True)
class TraceCopy:
    """One received contribution to a trace record."""

    project_id: str
    id: str
    source: str
    received_at: str
    data: dict[str, Any]


class CollectorStore:
    """Thread-safe SQLite store (a file, or ``:memory:``)."""

    def __init__(self, database: str | Path = ":memory:") -> None:
        if str(database) != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(database), check_same_thread=False)
        with self._lock:
            if str(database) != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.commit()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def add(
        self,
        *,
        observations: Iterable[ObservationCopy] = (),
        traces: Iterable[TraceCopy] = (),
    ) -> None:
        """Store received copies in one transaction."""
        obs_rows = [
            (
                o.project_id,
                o.id,
                o.trace_id,
                o.source,
                int(o.is_copy),
                o.received_at,
                o.fingerprint,
                json.dumps(o.data, default=str),
            )
            for o in observations
        ]
        trace_rows = [
            (t.project_id, t.id, t.source, t.received_at, json.dumps(t.data, default=str))
            for t in traces
        ]
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT INTO observation_copies (project_id, id, trace_id, source, is_copy, "
                "received_at, fingerprint, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                obs_rows,
            )
            self._conn.executemany(
                "INSERT INTO trace_copies (project_id, id, source, received_at, data) "
                "VALUES (?, ?, ?, ?, ?)",
                trace_rows,
            )

    def upsert_score(self, project_id: str, score: Mapping[str, Any], received_at: str) -> None:
        """Insert or replace a score by id."""
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO scores (project_id, id, received_at, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (project_id, id) DO UPDATE SET received_at = excluded.received_at, "
                "data = excluded.data",
                (project_id, score["id"], received_at, json.dumps(score, default=str)),
            )

    def delete_score(self, project_id: str, score_id: str) -> bool:
        """Delete a score; True when it existed."""
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "DELETE FROM scores WHERE project_id = ? AND id = ?", (project_id, score_id)
            )
            return cursor.rowcount > 0

    def clear(self) -> None:
        """Forget everything received (observations, traces, scores)."""
        with self._lock, self._conn:
            for table in ("observation_copies", "trace_copies", "scores"):
                self._conn.execute(f"DELETE FROM {table}")

    def observation_ids(self, project_id: str | None = None) -> set[str]:
        """Distinct received observation ids (cheap: no record is decoded)."""
        clauses, params = _filters(project_id=project_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT id FROM observation_copies" + clauses, params
            ).fetchall()
        return {r[0] for r in rows}

    def copy_count(self, project_id: str | None = None) -> int:
        """How many observation copies arrived in total (duplicates included)."""
        clauses, params = _filters(project_id=project_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM observation_copies" + clauses, params
            ).fetchone()
        return int(row[0])

    def observation_copies(
        self, project_id: str | None = None, trace_id: str | None = None
    ) -> list[ObservationCopy]:
        """Every received observation copy, in arrival order."""
        sql = (
            "SELECT project_id, id, trace_id, source, is_copy, received_at, data, fingerprint "
            "FROM observation_copies"
        )
        clauses, params = _filters(project_id=project_id, trace_id=trace_id)
        with self._lock:
            rows = self._conn.execute(sql + clauses + " ORDER BY seq", params).fetchall()
        return [
            ObservationCopy(r[0], r[1], r[2], r[3], bool(r[4]), r[5], json.loads(r[6]), r[7])
            for r in rows
        ]

    def trace_copies(
        self, project_id: str | None = None, trace_id: str | None = None
    ) -> list[TraceCopy]:
        """Every received trace contribution, in arrival order."""
        sql = "SELECT project_id, id, source, received_at, data FROM trace_copies"
        clauses, params = _filters(project_id=project_id, id=trace_id)
        with self._lock:
            rows = self._conn.execute(sql + clauses + " ORDER BY seq", params).fetchall()
        return [TraceCopy(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def trace_ids(self, project_id: str | None = None) -> list[tuple[str, str]]:
        """(project id, trace id) of every trace with a record or an observation."""
        clauses, params = _filters(project_id=project_id)
        with self._lock:
            return self._trace_id_rows(clauses, params)

    def _trace_id_rows(self, clauses: str, params: list[Any]) -> list[tuple[str, str]]:
        obs_where = clauses + (" AND " if clauses else " WHERE ") + "trace_id IS NOT NULL"
        rows = self._conn.execute(
            "SELECT project_id, id FROM ("
            f"SELECT project_id, id, seq FROM trace_copies{clauses} UNION ALL "
            f"SELECT project_id, trace_id AS id, seq FROM observation_copies{obs_where}"
            ") GROUP BY project_id, id ORDER BY MIN(seq)",
            params + params,
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def last_received_at(self) -> str | None:
        """When the latest observation or trace copy arrived (None before the first)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(received_at) FROM (SELECT received_at FROM observation_copies "
                "UNION ALL SELECT received_at FROM trace_copies)"
            ).fetchone()
        return row[0] if row else None

    def scores(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored score (latest version per id)."""
        clauses, params = _filters(project_id=project_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT project_id, data FROM scores" + clauses + " ORDER BY received_at",
                params,
            ).fetchall()
        return [{**json.loads(r[1]), "projectId": r[0]} for r in rows]


def _filters(**values: str | None) -> tuple[str, list[Any]]:
    clauses = [f"{name} = ?" for name, value in values.items() if value is not None]
    params = [value for value in values.values() if value is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

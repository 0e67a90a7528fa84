"""Backfill: re-send stored traces of an app to its current destination (``opstrail export``).

Selected rows go back into the outbox as ``pending`` and a dispatcher delivers them like any
other row (leases, retries, bisecting, acknowledgements), so an export survives a crash and
never races the running dispatcher. Selected are the rows that still hold their trace info
(retention), are not already waiting, and that the *current* destination (host + project id)
has not acknowledged, unless ``force``. The trace info is re-filtered with the app's current
content policy, so tightening the policy also applies to re-sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from opstrail.config.destinations import ConfigDestinationResolver
from opstrail.config.tracing_config import find_app, recording_settings
from opstrail.delivery import codec
from opstrail.errors import ConfigError, ValidationError
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.repos import outbox as repo
from opstrail.storage.tables.outbox import OutboxAck, OutboxRow, OutboxState
from opstrail.tracing.info import FeedbackInfo
from opstrail.tracing.policy import apply_feedback_policy, apply_policy

DUPLICATES_WARNING = (
    "--force re-sends traces this destination already acknowledged: Langfuse v4 stores "
    "re-sent spans as duplicates (inflating counts and costs); v3 merges them."
)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What an export queued.

    ``row_ids`` are the outbox rows queued again; ``skipped_acknowledged`` the rows left out
    because the destination already has them; ``waiting`` rows already queued for delivery.
    """

    app_id: str
    destination_key: str
    server_version: str | None
    row_ids: tuple[int, ...]
    skipped_acknowledged: int
    waiting: int
    force: bool
    warning: str | None


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """Where the queued rows stand."""

    total: int
    delivered: int
    dead: int
    waiting: int

    @property
    def finished(self) -> bool:
        """Every queued row was delivered or given up."""
        return self.waiting == 0


def _exportable() -> ColumnElement[bool]:
    # Rows that hold trace info and are not waiting already; a rating replaced by a newer one
    # is never re-sent (the newer one is the truth).
    return and_(
        OutboxRow.payload_row.has(),
        OutboxRow.state.in_(
            (
                OutboxState.DELIVERED.value,
                OutboxState.DEAD.value,
                OutboxState.UNROUTED.value,
                OutboxState.CANCELLED.value,
            )
        ),
        or_(OutboxRow.last_error_code.is_(None), OutboxRow.last_error_code != "superseded"),
    )


def start_export(
    session: Session,
    settings: Settings,
    *,
    app_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    force: bool = False,
    tenant_id: str | None = None,
) -> ExportPlan:
    """Queue the app's stored traces for its current destination; commits.

    Args:
        since: only rows recorded at or after this time (timezone-aware).
        until: only rows recorded before this time.
        force: also re-send rows the destination acknowledged (duplicates on Langfuse v4).

    Raises:
        NotFoundError: unknown app.
        ValidationError: a naive datetime, or ``since`` after ``until``.
        ConfigError: code ``tracing_not_enabled`` when the app has no enabled destination.
    """
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise ValidationError("--since/--until need a time zone (e.g. 2026-11-01T00:00Z)")
    if since and until and since >= until:
        raise ValidationError("--since must be before --until")
    find_app(session, app_id, tenant_id=tenant_id)
    destination = ConfigDestinationResolver(settings).resolve(session, app_id)
    if destination is None:
        raise ConfigError(
            "tracing is not configured or not enabled for this app; enable it first",
            code="tracing_not_enabled",
        )
    key = destination.key
    conditions = [OutboxRow.app_id == app_id, _exportable()]
    if since is not None:
        conditions.append(OutboxRow.created_at >= since)
    if until is not None:
        conditions.append(OutboxRow.created_at < until)
    acked = exists().where(OutboxAck.destination_key == key, OutboxAck.outbox_id == OutboxRow.id)
    candidates = select(OutboxRow.id).where(*conditions)
    skipped = 0
    if not force:
        skipped = int(session.scalar(select(func.count()).select_from(
            candidates.where(acked).subquery()
        )) or 0)
        candidates = candidates.where(~acked)
    ids = tuple(session.scalars(candidates.order_by(OutboxRow.id)))
    waiting_conditions = [
        OutboxRow.app_id == app_id,
        OutboxRow.state.in_((OutboxState.PENDING.value, OutboxState.RETRYING.value)),
    ]
    waiting = int(session.scalar(select(func.count()).where(*waiting_conditions)) or 0)
    policy = recording_settings(session, app_id).policy
    now = utcnow()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        # An export goes through the current builder and policy: a body stored when the
        # row was recorded (a cancelled row may still have one) is never sent.
        repo.drop_wire(session, ids=chunk)
        if policy.mode != "full":
            _refilter(session, chunk, policy)
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(chunk))
            .values(
                state=OutboxState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                queued_at=now,
                lease_owner=None,
                lease_until=None,
                last_error_code="export",
                last_error_message="queued again by opstrail export",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    session.commit()
    major = _major(destination.server_version)
    warning = DUPLICATES_WARNING if force and (major is None or major >= 4) else None
    return ExportPlan(
        app_id=app_id,
        destination_key=key,
        server_version=destination.server_version,
        row_ids=ids,
        skipped_acknowledged=skipped,
        waiting=waiting,
        force=force,
        warning=warning,
    )


def _refilter(session: Session, ids: Sequence[int], policy: object) -> None:
    """Apply the current content policy to stored trace info (sampling is not re-decided:
    these traces were kept when they were recorded)."""
    from opstrail.tracing.policy import ContentPolicy

    assert isinstance(policy, ContentPolicy)
    keep_all = replace(policy, sample_rate=1.0)
    rows = select(OutboxRow).where(OutboxRow.id.in_(ids)).options(
        selectinload(OutboxRow.payload_row)
    )
    for row in session.scalars(rows):
        assert row.payload is not None
        record = codec.decode(row.kind, row.payload)
        if isinstance(record, FeedbackInfo):
            filtered_feedback = apply_feedback_policy(record, keep_all)
            if filtered_feedback is not None:
                row.payload = codec.encode(filtered_feedback)
            continue
        filtered = apply_policy(record, keep_all)
        if filtered is not None:
            row.payload = codec.encode(filtered)
            row.payload_bytes = len(row.payload)
    session.flush()


def _major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.lstrip("v").split(".", 1)[0]
    return int(head) if head.isdigit() else None


def export_progress(session: Session, row_ids: Sequence[int]) -> ExportProgress:
    """Count the queued rows by outcome."""
    counts: dict[str, int] = {}
    for start in range(0, len(row_ids), _CHUNK):
        chunk = row_ids[start : start + _CHUNK]
        for state, count in session.execute(
            select(OutboxRow.state, func.count())
            .where(OutboxRow.id.in_(chunk))
            .group_by(OutboxRow.state)
        ):
            counts[state] = counts.get(state, 0) + int(count)
    delivered = counts.get(OutboxState.DELIVERED.value, 0)
    dead = counts.get(OutboxState.DEAD.value, 0)
    return ExportProgress(
        total=len(row_ids),
        delivered=delivered,
        dead=dead,
        waiting=len(row_ids) - delivered - dead - counts.get(OutboxState.CANCELLED.value, 0)
        - counts.get(OutboxState.UNROUTED.value, 0),
    )

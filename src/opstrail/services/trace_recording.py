"""Recording traces and ratings: the only call the request path makes for tracing.

``record_trace``/``record_feedback`` run inside the caller's transaction, right before its
commit: they apply the app's content policy and sampling, and add one outbox row. No network
and no destination lookup happen here; the dispatcher does that after the commit.

A routed trace bound for the OTLP path is also built and encoded here (``encode_at_record``,
on by default), so a worker frames stored spans instead of decoding, building and encoding
each trace: that CPU moves from the worker to the run that produced the trace
(docs/decisions.md, "Encoding at record time").
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from opstrail.config.tracing_config import RecordingSettings, recording_settings
from opstrail.delivery.codec import KIND_SCORE
from opstrail.delivery.outbox import enqueue_score, enqueue_trace
from opstrail.exporters.base import EncodedTrace, IngestionPath
from opstrail.exporters.registry import record_encoder
from opstrail.services.wire_encoding import EncodeJob, attached, defer, encode_record
from opstrail.settings import Settings
from opstrail.storage.tables.outbox import OutboxRow
from opstrail.tracing.build import BuildOptions
from opstrail.tracing.info import FeedbackInfo, RootTraceInfo
from opstrail.tracing.policy import (
    ContentPolicy,
    apply_feedback_policy,
    apply_policy,
    feedback_trace_id,
)

log = logging.getLogger(__name__)


def build_options(settings: Settings) -> BuildOptions:
    """The deployment's trace build options (recording and the dispatcher use the same)."""
    return BuildOptions(
        low_cardinality_names=settings.low_cardinality_names, release=settings.release
    )


def record_trace(session: Session, settings: Settings, info: RootTraceInfo) -> None:
    """Write the outbox row of a finished run (or title generation) into ``session``.

    Call inside your own transaction, right before commit: the row commits or rolls back with
    your data. The app's content policy is applied now, so the stored payload is what may be
    sent. A sampled-out trace writes nothing. While tracing is not configured or disabled the
    row is stored ``unrouted``: never sent by the dispatcher, but ``opstrail export`` can.

    With ``encode_at_record``, a trace bound for a path that stores encoded bodies is built
    and encoded: after the commit, by the session factory's ``WireEncoder`` when it has one
    (the server), else here in the transaction.

    Args:
        session: the caller's session.
        settings: deployment settings (build options, ``encode_at_record``).
        info: the complete root record of the run.
    """
    recording = recording_settings(session, info.context.app_id)
    kept = apply_policy(info, recording.policy)
    if kept is None:
        return
    path = _stored_path(settings, recording)
    if path is not None and attached(session):
        row_id = enqueue_trace(session, kept)
        defer(session, EncodeJob(row_id, kept, path))
        return
    encoded = _encode_now(kept, settings, path) if path is not None else None
    enqueue_trace(session, kept, routed=recording.enabled, encoded=encoded)


def _stored_path(settings: Settings, recording: RecordingSettings) -> IngestionPath | None:
    """The path whose encoded body is stored with the trace, or ``None``: not wanted, not
    routed, or a path that builds its requests at send time."""
    if not (settings.encode_at_record and recording.enabled and recording.ingestion_path):
        return None
    path = IngestionPath(recording.ingestion_path)
    return path if record_encoder(path) is not None else None


def _encode_now(
    info: RootTraceInfo, settings: Settings, path: IngestionPath
) -> EncodedTrace | None:
    """The trace encoded for ``path`` now, or ``None`` if the build failed: the dispatcher
    then builds it from the trace info and, if it fails again, dead-letters the row with the
    reason, so the run itself never fails for it."""
    try:
        return encode_record(info, build_options(settings), path)
    except Exception:  # the request-path boundary: recording must not fail the run
        log.exception("building trace of app %s at record time failed", info.context.app_id)
        return None


def record_feedback(session: Session, settings: Settings, feedback: FeedbackInfo) -> None:
    """Write the outbox row of a rating (``None`` rating: delete the score) into ``session``.

    The score follows its trace: it is written when the trace was recorded (a failed run is
    kept even when its id is not sampled) or when the sampling rule keeps that trace id.
    """
    recording = recording_settings(session, feedback.context.app_id)
    kept = apply_feedback_policy(feedback, recording.policy)
    if kept is None:
        if not _trace_recorded(session, feedback):
            return
        kept = apply_feedback_policy(feedback, _unsampled(recording.policy))
        if kept is None:  # pragma: no cover - a rate of 1.0 keeps every id
            return
    enqueue_score(session, kept, routed=recording.enabled)


def _unsampled(policy: ContentPolicy) -> ContentPolicy:
    return replace(policy, sample_rate=1.0)


def _trace_recorded(session: Session, feedback: FeedbackInfo) -> bool:
    recorded = session.scalar(
        select(
            exists().where(
                OutboxRow.trace_id == feedback_trace_id(feedback),
                OutboxRow.app_id == feedback.context.app_id,
                OutboxRow.kind != KIND_SCORE,
            )
        )
    )
    return bool(recorded)

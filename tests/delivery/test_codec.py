"""The outbox codec: every sample record survives the round trip and builds the same trace."""

from __future__ import annotations

import pytest

from opstrail.delivery import codec
from opstrail.errors import DeliveryError
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace
from opstrail.tracing.policy import root_trace_id

RECORDS = [
    samples.chat_message(),
    samples.agent_message(),
    samples.completion_message(),
    samples.flagged_message(),
    samples.workflow_run(5),
    samples.branching_workflow_run(),
    samples.failed_workflow_run(),
    samples.stopped_workflow_run(),
    samples.chatflow_run(),
    samples.conversation_name(),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_codec_round_trips_record_when_stored(record: object) -> None:
    """decode(encode(x)) == x, and it builds exactly the same trace (ids included)."""
    kind = codec.kind_of(record)  # type: ignore[arg-type]
    back = codec.decode(kind, codec.encode(record))  # type: ignore[arg-type]
    assert back == record
    assert build_trace(back) == build_trace(record)  # type: ignore[arg-type]
    assert root_trace_id(record) == build_trace(record).id  # type: ignore[arg-type]


def test_codec_round_trips_feedback_when_stored() -> None:
    """Ratings (and revoked ones) survive the round trip."""
    for rating in ("like", "dislike", None):
        feedback = samples.feedback(rating)  # type: ignore[arg-type]
        assert codec.decode("score", codec.encode(feedback)) == feedback


def test_codec_refuses_payload_when_it_does_not_validate() -> None:
    """A stored payload that no longer validates raises a DeliveryError with a code."""
    with pytest.raises(DeliveryError) as broken:
        codec.decode("message", '{"message_id": 3}')
    assert broken.value.code == "undecodable_payload"
    with pytest.raises(DeliveryError) as unknown:
        codec.decode("nope", "{}")
    assert unknown.value.code == "unknown_kind"

"""The outbox codec: every sample record survives the round trip and builds the same trace."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from typing_extensions import TypeAliasType

from opstrail.delivery import codec
from opstrail.errors import DeliveryError
from opstrail.tracing import samples
from opstrail.tracing.build import build_trace
from opstrail.tracing.info import MessageTraceInfo
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


def test_codec_falls_back_to_the_standard_library_when_orjson_refuses_a_value() -> None:
    """An integer beyond 64 bits inside a JSON value (orjson refuses it) still round-trips,
    and a non-finite float is stored as null either way."""
    from dataclasses import replace

    huge = replace(samples.chat_message(), inputs={"n": 2**70, "x": float("nan")})
    back = codec.decode("message", codec.encode(huge))
    assert isinstance(back, MessageTraceInfo)
    assert back.inputs == {"n": 2**70, "x": None}
    plain = replace(samples.chat_message(), inputs={"x": float("inf")})
    back_plain = codec.decode("message", codec.encode(plain))
    assert isinstance(back_plain, MessageTraceInfo)
    assert back_plain.inputs == {"x": None}


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_codec_reads_rows_written_by_the_earlier_pydantic_encoder(record: object) -> None:
    """Rows already in an outbox were written by Pydantic's dump_json (times with ``Z``);
    they decode to the same record."""
    from pydantic import TypeAdapter

    old_payload = TypeAdapter(type(record)).dump_json(record).decode("utf-8")
    assert codec.decode(codec.kind_of(record), old_payload) == record  # type: ignore[arg-type]


# The precise JSON type, as the static alias in tracing/values.py spells it. Decoding used to
# validate through it; at run time the codec now takes JSON values as parsed (see values.py).
StrictJson = TypeAliasType(
    "StrictJson",
    "bool | int | float | str | list[StrictJson] | dict[str, StrictJson] | None",
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _typed(value: object) -> object:
    """``value`` with every scalar paired with its type, so 1, 1.0 and True differ."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=150, deadline=None)
@given(value=_json_values)
def test_codec_decodes_json_values_as_the_strict_json_type_would(value: object) -> None:
    """Any JSON value in a record's JSON fields comes back equal, type for type, to what
    validation through the precise recursive JSON type gives for the same stored text."""
    record = replace(samples.chat_message(), outputs=value, inputs={"k": value})
    back = codec.decode(codec.KIND_MESSAGE, codec.encode(record))
    assert isinstance(back, MessageTraceInfo)
    strict = TypeAdapter(StrictJson).validate_json(json.dumps(value))
    assert _typed(back.outputs) == _typed(strict) == _typed(value)
    assert _typed(dict(back.inputs)) == _typed({"k": strict})

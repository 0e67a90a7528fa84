"""Trace-info records <-> the JSON stored in an outbox row.

The outbox keeps the policy-applied trace info, not the built tree, so a re-send goes through
the current builder (``opstrail.tracing.build``). Pydantic validates the frozen dataclasses of
``opstrail.tracing.info`` on the way back, so a row that no longer decodes is found at once
(and dead-lettered with the reason) instead of producing a half-empty trace.
"""

from __future__ import annotations

from typing import Final

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from opstrail.errors import DeliveryError
from opstrail.tracing.info import (
    FeedbackInfo,
    GenerateNameTraceInfo,
    MessageTraceInfo,
    RootTraceInfo,
    WorkflowTraceInfo,
)

# Outbox kinds, one per record type (the stored ``kind`` column).
KIND_MESSAGE: Final = "message"
KIND_WORKFLOW: Final = "workflow"
KIND_GENERATE_NAME: Final = "generate_name"
KIND_SCORE: Final = "score"

# Compiled once: adapters are immutable validators, not state.
_ADAPTERS: Final[dict[str, TypeAdapter[object]]] = {
    KIND_MESSAGE: TypeAdapter(MessageTraceInfo),
    KIND_WORKFLOW: TypeAdapter(WorkflowTraceInfo),
    KIND_GENERATE_NAME: TypeAdapter(GenerateNameTraceInfo),
    KIND_SCORE: TypeAdapter(FeedbackInfo),
}


def kind_of(info: RootTraceInfo | FeedbackInfo) -> str:
    """Return the outbox kind of a record.

    Raises:
        DeliveryError: the record is not a root trace record or feedback.
    """
    if isinstance(info, MessageTraceInfo):
        return KIND_MESSAGE
    if isinstance(info, WorkflowTraceInfo):
        return KIND_WORKFLOW
    if isinstance(info, GenerateNameTraceInfo):
        return KIND_GENERATE_NAME
    if isinstance(info, FeedbackInfo):
        return KIND_SCORE
    raise DeliveryError(
        f"{type(info).__name__} is not a root trace record; record its run instead",
        code="not_a_root_record",
    )


def encode(info: RootTraceInfo | FeedbackInfo) -> str:
    """Serialize a record to the JSON stored in the outbox."""
    return _ADAPTERS[kind_of(info)].dump_json(info).decode("utf-8")


def decode(kind: str, payload: str) -> RootTraceInfo | FeedbackInfo:
    """Rebuild a record from its stored JSON.

    Raises:
        DeliveryError: unknown kind (code ``unknown_kind``) or a payload that does not
            validate (code ``undecodable_payload``).
    """
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        raise DeliveryError(f"unknown outbox kind {kind!r}", code="unknown_kind")
    try:
        record = adapter.validate_json(payload)
    except PydanticValidationError as exc:
        raise DeliveryError(
            f"stored {kind} record does not decode: {exc.error_count()} error(s), first: "
            f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']}",
            code="undecodable_payload",
        ) from exc
    assert isinstance(  # the adapter validated exactly one of these types
        record, MessageTraceInfo | WorkflowTraceInfo | GenerateNameTraceInfo | FeedbackInfo
    )
    return record

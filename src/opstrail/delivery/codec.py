"""Trace-info records <-> the JSON stored in an outbox row.

The outbox keeps the policy-applied trace info, not the built tree, so a re-send goes through
the current builder (``opstrail.tracing.build``). Pydantic validates the frozen dataclasses of
``opstrail.tracing.info`` on the way back, so a row that no longer decodes is found at once
(and dead-lettered with the reason) instead of producing a half-empty trace.

Encoding is on the request path, decoding on the dispatcher's: each uses the fastest tool
measured for it. orjson writes the dataclasses, enums and UTC times natively, in about half
the time of Pydantic's ``dump_json`` (64 against 132 us CPU for a 20-node workflow run). For
decoding, a pure-Python converter built from the type hints was tried and was slower than
Pydantic's Rust validator (about 540 against 350 us): constructing the records in Python is
most of the cost, so Pydantic stays there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Final

import orjson
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


def _default(value: object) -> object:
    """What orjson does not serialize itself: decimals as exact text, read-only mappings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not serializable")


def _plain(value: object) -> object:
    """The JSON-ready form of a record, for the standard library fallback."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # as orjson writes it: JSON has no NaN or infinity
    return value


def encode(info: RootTraceInfo | FeedbackInfo) -> str:
    """Serialize a record to the JSON stored in the outbox.

    The standard library takes over for what orjson refuses (integers beyond 64 bits or
    non-text keys inside a JSON value); both write what ``decode`` reads back.
    """
    kind_of(info)  # refuses what is not a storable record
    try:
        return orjson.dumps(info, default=_default).decode("utf-8")
    except TypeError:
        return json.dumps(_plain(info), ensure_ascii=False, separators=(",", ":"))


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

"""The model seam: every model client speaks ``ModelClient``.

Requests and answers are plain frozen dataclasses, so the offline model, an OpenAI-compatible
endpoint and test fakes are interchangeable. Usage and timing are measured here, at the call,
so trace records never have to reconstruct them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One prompt message. ``tool_call_id`` answers a tool call; ``tool_calls`` are the
    calls an assistant message made."""

    role: Role
    content: str
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: name, description, JSON schema of its parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for."""

    id: str
    name: str
    arguments: str  # JSON text, as models return it


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One model invocation.

    ``response_schema`` asks for JSON output matching that schema (question classifier,
    parameter extractor); ``tools`` enables function calling.
    """

    provider: str
    model: str
    messages: Sequence[ChatMessage]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    mode: Literal["chat", "completion"] = "chat"
    tools: Sequence[ToolSpec] = ()
    response_schema: Mapping[str, Any] | None = None
    stop: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class ModelUsage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    price: Decimal | None = None
    input_price: Decimal | None = None
    output_price: Decimal | None = None
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class ModelChunk:
    """A streamed piece of the answer. The last chunk carries ``usage`` and the final
    ``tool_calls``."""

    delta: str = ""
    usage: ModelUsage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ModelResult:
    """A finished invocation, measured at the call. Times are timezone-aware UTC;
    ``time_to_first_token`` is seconds after ``start_time`` (streaming only)."""

    text: str
    usage: ModelUsage
    start_time: datetime
    end_time: datetime
    tool_calls: tuple[ToolCall, ...] = ()
    time_to_first_token: float | None = None
    finish_reason: str | None = None


class ModelClient(Protocol):
    """A model backend. Errors are raised as ``opstrail.errors.RuntimeFailure`` with a
    message fit for the caller (``code`` ``model_error``)."""

    def invoke(self, request: ModelRequest) -> ModelResult:
        """Run the request to completion."""
        ...

    def stream(self, request: ModelRequest) -> Iterator[ModelChunk]:
        """Yield the answer as it is produced; the last chunk has ``usage``."""
        ...

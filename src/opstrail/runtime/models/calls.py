"""One measured model call: stream or invoke, time it, and record it as a ``ModelCall``.

Timing is taken here, at the call: start, time to first token (streaming), end. A failed call
is still recorded (with its error and no tokens) so the trace shows what was attempted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opstrail.errors import RuntimeFailure
from opstrail.runtime.models.base import ModelRequest, ModelResult, ModelUsage, ToolCall
from opstrail.runtime.models.pricing import priced_usage
from opstrail.runtime.models.registry import ResolvedModel
from opstrail.runtime.models.tokens import count_message_tokens, count_tokens
from opstrail.tracing.info import ModelCall
from opstrail.tracing.values import JsonValue


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """The result of a call (``None`` when it failed), its trace record and its error."""

    result: ModelResult | None
    record: ModelCall
    error: RuntimeFailure | None = None
    stopped: bool = False


def prompt_json(request: ModelRequest) -> JsonValue:
    """The prompt as chat messages, as traces show it."""
    out: list[JsonValue] = []
    for m in request.messages:
        item: dict[str, JsonValue] = {"role": m.role, "content": m.content}
        if m.name:
            item["name"] = m.name
        if m.tool_calls:
            item["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls
            ]
        out.append(item)
    return out


def _parameters(request: ModelRequest) -> dict[str, JsonValue]:
    params: dict[str, JsonValue] = {}
    for key, value in request.parameters.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            params[key] = value
        elif isinstance(value, (list, tuple)):
            params[key] = [v for v in value if isinstance(v, (str, int, float, bool))]
    return params


def _record(
    resolved: ResolvedModel,
    request: ModelRequest,
    start: datetime,
    end: datetime,
    usage: ModelUsage | None,
    completion: JsonValue,
    *,
    ttft: float | None,
    streaming: bool,
    error: str | None,
) -> ModelCall:
    usage = usage or ModelUsage(0, 0, 0)
    return ModelCall(
        provider=resolved.provider,
        model=resolved.model,
        start_time=start,
        end_time=end,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        model_parameters=_parameters(request),
        prompt_messages=prompt_json(request),
        completion=completion,
        price=usage.price,
        input_price=usage.input_price,
        output_price=usage.output_price,
        currency=usage.currency,
        time_to_first_token=ttft,
        usage_details={"input": usage.prompt_tokens, "output": usage.completion_tokens},
        error=error,
        streaming=streaming,
    )


def _completion(text: str, tool_calls: tuple[ToolCall, ...]) -> JsonValue:
    if not tool_calls:
        return text
    return {
        "content": text,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in tool_calls],
    }


def call_model(
    resolved: ResolvedModel,
    request: ModelRequest,
    *,
    stream: bool,
    on_delta: Callable[[str], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CallOutcome:
    """Run one call and measure it.

    With ``stream`` the answer arrives through ``on_delta`` as it is produced and
    ``should_stop`` is checked between chunks (a stopped call keeps what it produced).
    """
    start = datetime.now(UTC)
    started = time.perf_counter()
    if not stream:
        try:
            result = resolved.client.invoke(request)
        except RuntimeFailure as exc:
            end = datetime.now(UTC)
            return CallOutcome(None, _record(resolved, request, start, end, None, None,
                                             ttft=None, streaming=False, error=exc.message), exc)
        record = _record(
            resolved, request, start, _end(start, started), result.usage,
            _completion(result.text, result.tool_calls), ttft=None, streaming=False, error=None,
        )
        return CallOutcome(result, record)
    gen = stream_call(resolved, request, should_stop=should_stop)
    while True:
        try:
            delta = next(gen)
        except StopIteration as done:
            outcome: CallOutcome = done.value
            return outcome
        if on_delta is not None:
            on_delta(delta)


def stream_call(
    resolved: ResolvedModel,
    request: ModelRequest,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[str, None, CallOutcome]:
    """Stream one call: yields the answer's text pieces, returns the measured outcome.

    ``should_stop`` is checked after every chunk; a stopped call keeps what it produced.
    """
    start = datetime.now(UTC)
    started = time.perf_counter()
    parts: list[str] = []
    ttft: float | None = None
    usage: ModelUsage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish: str | None = None
    stopped = False
    chunks = resolved.client.stream(request)
    try:
        for chunk in chunks:
            if chunk.delta:
                if ttft is None:
                    ttft = time.perf_counter() - started
                parts.append(chunk.delta)
                yield chunk.delta
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.tool_calls:
                tool_calls = chunk.tool_calls
                if ttft is None:
                    ttft = time.perf_counter() - started
            if chunk.finish_reason:
                finish = chunk.finish_reason
            if should_stop is not None and should_stop():
                stopped = True
                break
    except RuntimeFailure as exc:
        text = "".join(parts)
        record = _record(resolved, request, start, _end(start, started), usage, text or None,
                         ttft=ttft, streaming=True, error=exc.message)
        return CallOutcome(None, record, exc)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    text = "".join(parts)
    end = _end(start, started)
    if usage is None:
        # Stopped early or the endpoint sent no usage: estimate, never claim zero tokens.
        usage = priced_usage(
            resolved.provider, resolved.model,
            count_message_tokens(m.content for m in request.messages), count_tokens(text),
        )
    result = ModelResult(
        text=text, usage=usage, start_time=start, end_time=end, tool_calls=tool_calls,
        time_to_first_token=ttft, finish_reason="stopped" if stopped else finish,
    )
    record = _record(resolved, request, start, end, usage, _completion(text, tool_calls),
                     ttft=ttft, streaming=True, error=None)
    return CallOutcome(result, record, stopped=stopped)


def _end(start: datetime, started: float) -> datetime:
    # Monotonic elapsed time added to the wall-clock start: an end never precedes its start.
    return start + timedelta(seconds=time.perf_counter() - started)

"""OpenAI-compatible endpoints through the ``openai`` package.

One ``OpenAICompatModel`` per (base URL, key); it is built by the registry and reused. Streaming
asks for usage in the final chunk (``stream_options.include_usage``). Every provider failure is
translated here into ``RuntimeFailure(code="completion_request_error")`` with the provider's
message, so no ``openai`` type leaks upward.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

import openai

from opstrail.errors import RuntimeFailure
from opstrail.runtime.models.base import (
    ChatMessage,
    ModelChunk,
    ModelRequest,
    ModelResult,
    ModelUsage,
    ToolCall,
)
from opstrail.runtime.models.pricing import priced_usage
from opstrail.runtime.models.tokens import count_message_tokens, count_tokens

_PARAMETERS: Final = (
    "temperature",
    "top_p",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "n",
)


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        if not message.content:
            out["content"] = None
    if message.name and message.role in ("user", "system"):
        out["name"] = message.name
    return out


def _failure(exc: Exception) -> RuntimeFailure:
    if isinstance(exc, openai.APIStatusError):
        detail = exc.message or str(exc)
        return RuntimeFailure(
            f"model provider answered HTTP {exc.status_code}: {detail}"[:1000],
            code="completion_request_error",
        )
    if isinstance(exc, openai.APITimeoutError):
        return RuntimeFailure("model provider timed out", code="completion_request_error")
    if isinstance(exc, openai.APIConnectionError):
        return RuntimeFailure(
            f"cannot reach the model provider: {exc}", code="completion_request_error"
        )
    return RuntimeFailure(f"model provider error: {exc}"[:1000], code="completion_request_error")


class OpenAICompatModel:
    """A ``ModelClient`` for any OpenAI-compatible chat-completions endpoint.

    Args:
        provider: the provider name recorded on traces (for pricing and ``ls_provider``).
        base_url: endpoint base URL (``.../v1``); ``None`` for api.openai.com.
        api_key: the key sent as bearer token.
        timeout: seconds per request.
    """

    def __init__(
        self, *, provider: str, base_url: str | None, api_key: str, timeout: float = 60.0
    ) -> None:
        self._provider = provider
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _kwargs(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [_message(m) for m in request.messages],
        }
        for name in _PARAMETERS:
            value = request.parameters.get(name)
            if value is not None:
                kwargs[name] = value
        stop = list(request.stop) or request.parameters.get("stop")
        if stop:
            kwargs["stop"] = stop
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in request.tools
            ]
        if request.response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": dict(request.response_schema)},
            }
        return kwargs

    def _usage(self, request: ModelRequest, usage: Any, text: str) -> ModelUsage:
        if usage is not None:
            prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion = int(getattr(usage, "completion_tokens", 0) or 0)
        else:
            # The endpoint sent no usage: estimate, so a trace never claims zero tokens.
            prompt = count_message_tokens(m.content for m in request.messages)
            completion = count_tokens(text)
        return priced_usage(self._provider, request.model, prompt, completion)

    def invoke(self, request: ModelRequest) -> ModelResult:
        """Run the request without streaming."""
        start = datetime.now(UTC)
        try:
            response = self._client.chat.completions.create(**self._kwargs(request))
        except openai.OpenAIError as exc:
            raise _failure(exc) from exc
        if not response.choices:
            raise RuntimeFailure("model provider returned no choices", code="completion_request_error")
        choice = response.choices[0]
        text = choice.message.content or ""
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (choice.message.tool_calls or [])
            if getattr(c, "function", None) is not None
        )
        return ModelResult(
            text=text,
            usage=self._usage(request, response.usage, text),
            start_time=start,
            end_time=datetime.now(UTC),
            tool_calls=calls,
            finish_reason=choice.finish_reason,
        )

    def stream(self, request: ModelRequest) -> Iterator[ModelChunk]:
        """Stream the answer; the final chunk has usage and the assembled tool calls."""
        kwargs = self._kwargs(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        text_parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: Any = None
        finish: str | None = None
        stream: Any = None
        try:
            stream = self._client.chat.completions.create(**kwargs)
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    delta = choice.delta
                    if delta is None:
                        continue
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                        if call.id:
                            slot["id"] = call.id
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += call.function.arguments or ""
                    if delta.content:
                        text_parts.append(delta.content)
                        yield ModelChunk(delta=delta.content)
        except openai.OpenAIError as exc:
            raise _failure(exc) from exc
        finally:
            # A stopped run abandons the stream: release the HTTP connection now.
            if stream is not None:
                stream.close()
        tool_calls = tuple(
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"] or "{}")
            for index, slot in sorted(calls.items())
        )
        yield ModelChunk(
            usage=self._usage(request, usage, "".join(text_parts)),
            tool_calls=tool_calls,
            finish_reason=finish,
        )


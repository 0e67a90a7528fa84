"""One model invocation from a node, measured at the call and recorded as a ``ModelCall``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opstrail.errors import OpstrailError, RuntimeFailure
from opstrail.runtime.models.base import ChatMessage, ModelRequest, ModelUsage
from opstrail.runtime.nodes.base import ModelResolver
from opstrail.tracing.info import ModelCall


class ModelConfig:
    """The ``model`` block of a node: provider, name, mode, completion parameters."""

    __slots__ = ("mode", "name", "parameters", "provider", "stop")

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        raw = raw or {}
        self.provider = str(raw.get("provider") or "")
        self.name = str(raw.get("name") or "")
        self.mode = "completion" if raw.get("mode") == "completion" else "chat"
        params = dict(raw.get("completion_params") or {})
        stop = params.pop("stop", None) or ()
        self.stop = tuple(str(s) for s in stop) if isinstance(stop, list | tuple) else ()
        self.parameters = params


def call_model(
    models: ModelResolver,
    config: ModelConfig,
    messages: Sequence[ChatMessage],
    *,
    response_schema: Mapping[str, Any] | None = None,
    on_delta: Callable[[str], None] | None = None,
) -> tuple[str, ModelCall]:
    """Invoke the model (streaming, to measure the time to the first token; ``on_delta``
    receives each piece of text as it comes).

    Returns:
        The answer text and the recorded call.

    Raises:
        RuntimeFailure: the model is unknown or failed; the message says which model.
    """
    if not config.provider or not config.name:
        raise RuntimeFailure("the node has no model configured", code="model_error")
    request = ModelRequest(
        provider=config.provider,
        model=config.name,
        messages=tuple(messages),
        parameters=config.parameters,
        mode=config.mode,  # type: ignore[arg-type]
        response_schema=response_schema,
        stop=config.stop,
    )
    start_time = datetime.now(UTC)
    started = time.perf_counter()
    ttft: float | None = None
    parts: list[str] = []
    usage: ModelUsage | None = None
    provider, model = config.provider, config.name
    try:
        resolve = getattr(models, "resolve", None)
        if resolve is not None:
            # A registry that can fall back says which model really answers; the trace
            # records that one (the requested one goes to the node's process data).
            resolved = resolve(config.provider, config.name)
            client, provider, model = resolved.client, resolved.provider, resolved.model
        else:
            client = models.client_for(config.provider, config.name)
        for chunk in client.stream(request):
            if chunk.delta:
                if ttft is None:
                    ttft = time.perf_counter() - started
                parts.append(chunk.delta)
                if on_delta is not None:
                    on_delta(chunk.delta)
            if chunk.usage is not None:
                usage = chunk.usage
    except OpstrailError as exc:
        raise RuntimeFailure(
            f"model {config.provider}/{config.name} failed: {exc.message}", code="model_error"
        ) from exc
    end_time = datetime.now(UTC)
    text = "".join(parts)
    if usage is None:
        usage = ModelUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    call = ModelCall(
        provider=provider,
        model=model,
        start_time=start_time,
        end_time=end_time,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        model_parameters=json.loads(json.dumps(config.parameters, default=str)),
        prompt_messages=[{"role": m.role, "content": m.content} for m in messages]
        if config.mode == "chat"
        else "\n\n".join(m.content for m in messages),
        completion=text,
        price=usage.price,
        input_price=usage.input_price,
        output_price=usage.output_price,
        currency=usage.currency,
        time_to_first_token=ttft,
        streaming=True,
    )
    return text, call


def model_process_data(config: ModelConfig, call: ModelCall) -> dict[str, Any]:
    """What a model-using node records about its model: mode, the model that answered, and
    the requested one when a fallback answered instead."""
    data: dict[str, Any] = {"model_mode": config.mode, "model_provider": call.provider,
                            "model_name": call.model}
    if (call.provider, call.model) != (config.provider, config.name):
        data["requested_model"] = f"{config.provider}/{config.name}"
    return data


def usage_dict(call: ModelCall) -> dict[str, Any]:
    """The ``usage`` output of an LLM-using node, as Dify reports it."""
    return {
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "total_tokens": call.total_tokens,
        "total_price": str(call.price) if call.price is not None else "0",
        "currency": call.currency,
        "latency": (call.end_time - call.start_time).total_seconds(),
    }


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model answer (fenced or bare), or ``None``."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else stripped
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(stripped[start:end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None

"""Shared pieces of every builder: ids, rendering of inputs and outputs, usage and cost.

Every id is made here through ``opstrail.ids``; builders pass seeds, never hex.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from opstrail import ids
from opstrail.errors import TraceModelError
from opstrail.tracing.info import ModelCall, RunContext
from opstrail.tracing.levels import Verdict, error_verdict
from opstrail.tracing.limits import (
    FIELD_CAP_BYTES,
    TRUNCATION_METADATA_KEY,
    truncate_json,
    truncate_text,
)
from opstrail.tracing.tree import Cost, Observation, ObservationType, Trace, Usage
from opstrail.tracing.values import JsonValue

USD: Final = "USD"
UNPRICED_KEY: Final = "cost_unpriced"


def resolve_trace_id(domain_id: str, context: RunContext) -> tuple[str, dict[str, JsonValue]]:
    """The trace id of a run and the metadata that records where it came from.

    A caller's trace id (``RunContext.external_trace_id``) wins; its raw value is kept in
    the metadata as ``external_trace_id``.

    Raises:
        InvalidIdError: the caller's trace id breaks the id rules.
    """
    if context.external_trace_id:
        return ids.external_trace_id(context.external_trace_id), {
            "external_trace_id": context.external_trace_id
        }
    return ids.trace_id(domain_id), {}


def context_metadata(context: RunContext) -> dict[str, JsonValue]:
    """The who-and-where keys every trace's metadata carries (decisions.md, "Metadata")."""
    meta: dict[str, JsonValue] = {
        "app_id": context.app_id,
        "tenant_id": context.tenant_id,
        "from_source": context.from_source.value,
        "from_account_id": context.from_account_id,
        "from_end_user_id": context.from_end_user_id,
    }
    if context.app_name is not None:
        meta["app_name"] = context.app_name
    return meta


def decimal_text(value: Decimal) -> str:
    """A price as exact text (no float rounding, no exponent)."""
    return format(value, "f")


def is_usd(currency: str | None) -> bool:
    """True for USD (any case) or no currency given (prices default to USD)."""
    return (currency or USD).upper() == USD


def total_price_metadata(price: Decimal | None, currency: str | None) -> dict[str, JsonValue]:
    """Trace-level price totals: ``total_price`` in USD, else ``price``/``currency`` and
    ``cost_unpriced``; nothing when no price is known."""
    if price is None:
        return {}
    if is_usd(currency):
        return {"total_price": decimal_text(price)}
    return {"price": decimal_text(price), "currency": currency, UNPRICED_KEY: True}


def cost_of(
    price: Decimal | None,
    currency: str | None,
    input_price: Decimal | None = None,
    output_price: Decimal | None = None,
) -> tuple[Cost | None, dict[str, JsonValue]]:
    """The cost of one model call and the metadata explaining a missing one.

    Costs go out in USD only. A price in another currency stays in metadata (``price``,
    ``currency``) with ``cost_unpriced: true``; an unknown price sends no cost and
    ``cost_unpriced: true`` (never 0, which Langfuse would show as free). A price of exactly
    0 USD is a free model (the offline one) and is sent as 0.
    """
    if price is None:
        return None, {UNPRICED_KEY: True}
    if not is_usd(currency):
        return None, {"price": decimal_text(price), "currency": currency, UNPRICED_KEY: True}
    return (
        Cost(
            total=float(price),
            input=float(input_price) if input_price is not None else None,
            output=float(output_price) if output_price is not None else None,
        ),
        {},
    )


def usage_of(prompt_tokens: int, completion_tokens: int, details: Mapping[str, int]) -> Usage:
    """Exclusive usage buckets from provider counts.

    ``prompt_tokens``/``completion_tokens`` include their sub-buckets (``input_*`` and
    ``output_*`` keys of ``details``, e.g. ``input_cached_tokens``), as providers report
    them; Langfuse wants exclusive buckets, so the sub-buckets are subtracted. Other keys of
    ``details`` (``input``, ``output``, ``total`` or unknown names) are ignored: they are
    not sub-buckets and would count tokens twice.
    """
    sub_in = {k: v for k, v in details.items() if k.startswith("input_") and v >= 0}
    sub_out = {k: v for k, v in details.items() if k.startswith("output_") and v >= 0}
    input_tokens = max(prompt_tokens - sum(sub_in.values()), 0)
    output_tokens = max(completion_tokens - sum(sub_out.values()), 0)
    buckets = {**sub_in, **sub_out}
    return Usage(
        input=input_tokens,
        output=output_tokens,
        total=input_tokens + output_tokens + sum(buckets.values()),
        details=buckets,
    )


def first_token_time(start: datetime, ttft: float | None) -> datetime | None:
    """``completion_start_time``: the call's start plus its time to first token."""
    return None if ttft is None else start + timedelta(seconds=ttft)


def render_io(value: JsonValue) -> JsonValue:
    """An input or output as Langfuse renders it best.

    Chat messages (a list of objects with a ``role``) render as chat: Dify's ``text`` key
    becomes ``content`` and an empty ``files`` list is dropped. Everything else is kept as
    JSON (a plain string stays a string; never a Python repr).
    """
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, dict) and "role" in item for item in value)
    ):
        rendered: list[JsonValue] = []
        for item in value:
            assert isinstance(item, dict)  # checked above; narrows for mypy
            message: dict[str, JsonValue] = {}
            for key, inner in item.items():
                if key == "files" and not inner:
                    continue
                message["content" if key == "text" and "content" not in item else key] = inner
            rendered.append(message)
        return rendered
    return value


def plain(value: object) -> JsonValue:
    """A record value (mappings, tuples, Decimals, enums) as plain JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    raise TraceModelError(f"value of type {type(value).__name__} is not JSON")


def observation(
    *,
    trace_id: str,
    seed: str,
    type_: ObservationType,
    name: str,
    start: datetime,
    end: datetime,
    parent_id: str | None,
    input_: JsonValue = None,
    output: JsonValue = None,
    metadata: Mapping[str, JsonValue] | None = None,
    verdict: Verdict | None = None,
    model_call: ModelCall | None = None,
    model_name: str | None = None,
    version: str | None = None,
) -> Observation:
    """Build one observation: id from ``seed``, inputs rendered and capped, and, for a
    ``model_call``, model, parameters, usage, cost and first-token time. ``model_name``
    alone (no recorded call) names the model and marks usage and cost unknown.

    A field over the size cap is cut with a marker and ``opstrail_truncated: true`` goes
    into the observation's metadata.
    """
    meta: dict[str, JsonValue] = dict(metadata or {})
    rendered_in, cut_in = truncate_json(render_io(input_), FIELD_CAP_BYTES)
    rendered_out, cut_out = truncate_json(render_io(output), FIELD_CAP_BYTES)
    if cut_in or cut_out:
        meta[TRUNCATION_METADATA_KEY] = True
    verdict = verdict or error_verdict(None)
    status = verdict.status_message
    if status is not None:
        status = truncate_text(status, FIELD_CAP_BYTES)
    model: str | None = None
    parameters: dict[str, JsonValue] | None = None
    usage: Usage | None = None
    cost: Cost | None = None
    completion_start: datetime | None = None
    if model_call is not None:
        model = model_call.model
        parameters = dict(model_call.model_parameters)
        usage = usage_of(
            model_call.prompt_tokens, model_call.completion_tokens, model_call.usage_details
        )
        cost, cost_meta = cost_of(
            model_call.price,
            model_call.currency,
            model_call.input_price,
            model_call.output_price,
        )
        meta.update(cost_meta)
        meta.setdefault("model_provider", model_call.provider)
        meta.setdefault("streaming", model_call.streaming)
        completion_start = first_token_time(model_call.start_time, model_call.time_to_first_token)
    elif model_name is not None:
        model = model_name
        meta.update({UNPRICED_KEY: True, "usage_unknown": True})
    return Observation(
        id=ids.observation_id(seed),
        trace_id=trace_id,
        type=type_,
        name=name,
        start_time=start,
        end_time=end,
        parent_id=parent_id,
        input=rendered_in,
        output=rendered_out,
        metadata=meta,
        level=verdict.level,
        status_message=status,
        model=model,
        model_parameters=parameters,
        usage=usage,
        cost=cost,
        completion_start_time=completion_start,
        version=version,
    )


def call_observation(
    call: ModelCall,
    *,
    trace_id: str,
    seed: str,
    name: str,
    parent_id: str | None,
    metadata: Mapping[str, JsonValue] | None = None,
    output: JsonValue = None,
    type_: ObservationType = ObservationType.GENERATION,
) -> Observation:
    """A generation for one model call: its prompt in, its completion out (``output``
    overrides the completion), its own error as level and status message."""
    return observation(
        trace_id=trace_id,
        seed=seed,
        type_=type_,
        name=name,
        start=call.start_time,
        end=call.end_time,
        parent_id=parent_id,
        input_=call.prompt_messages,
        output=call.completion if output is None else output,
        metadata=metadata,
        verdict=error_verdict(call.error),
        model_call=call,
    )


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """``items`` without repeats or empty strings, first occurrence first."""
    return tuple(dict.fromkeys(item for item in items if item))


def check_tree(trace: Trace) -> Trace:
    """Refuse a tree whose ids collide or whose parents are missing.

    Raises:
        TraceModelError: two observations share an id, or a parent is neither in the trace
            nor in its ``external_parent_ids``.
    """
    seen: set[str] = set()
    for obs in trace.observations:
        if obs.id in seen:
            raise TraceModelError(f"observation id {obs.id} appears twice in trace {trace.id}")
        seen.add(obs.id)
    known = seen | trace.external_parent_ids
    for obs in trace.observations:
        if obs.parent_id is not None and obs.parent_id not in known:
            raise TraceModelError(
                f"observation {obs.name!r} has parent {obs.parent_id} missing from the trace"
            )
    return trace

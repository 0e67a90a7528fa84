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
from opstrail.tracing.levels import OK, Verdict, error_verdict
from opstrail.tracing.limits import (
    FIELD_CAP_BYTES,
    TRUNCATION_METADATA_KEY,
    truncate_json,
    truncate_text,
)
from opstrail.tracing.tree import (
    Cost,
    Observation,
    ObservationType,
    Trace,
    Usage,
    new_cost,
    new_observation,
    new_usage,
)
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
    # ``_value_`` is what an enum's ``.value`` returns, minus the property call (hot path).
    meta: dict[str, JsonValue] = {
        "app_id": context.app_id,
        "tenant_id": context.tenant_id,
        "from_source": context.from_source._value_,
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
        new_cost(
            float(price),
            float(input_price) if input_price is not None else None,
            float(output_price) if output_price is not None else None,
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
    if type(details) is dict and not details:
        # No sub-buckets (the usual case): the same arithmetic as below with empty sums
        # (``- 0`` keeps it: it turns a bool count into an int, as subtracting a sum does).
        input_tokens = max(prompt_tokens - 0, 0)
        output_tokens = max(completion_tokens - 0, 0)
        return new_usage(input_tokens, output_tokens, input_tokens + output_tokens + 0, {})
    sub_in = {k: v for k, v in details.items() if k.startswith("input_") and v >= 0}
    sub_out = {k: v for k, v in details.items() if k.startswith("output_") and v >= 0}
    input_tokens = max(prompt_tokens - sum(sub_in.values()), 0)
    output_tokens = max(completion_tokens - sum(sub_out.values()), 0)
    buckets = {**sub_in, **sub_out}
    return new_usage(
        input_tokens, output_tokens, input_tokens + output_tokens + sum(buckets.values()), buckets
    )


def first_token_time(start: datetime, ttft: float | None) -> datetime | None:
    """``completion_start_time``: the call's start plus its time to first token."""
    # timedelta(0, ttft) is timedelta(seconds=ttft), without parsing a keyword.
    return None if ttft is None else start + timedelta(0, ttft)


def render_io(value: JsonValue) -> JsonValue:
    """An input or output as Langfuse renders it best.

    Chat messages (a list of objects with a ``role``) render as chat: Dify's ``text`` key
    becomes ``content`` and an empty ``files`` list is dropped. Everything else is kept as
    JSON (a plain string stays a string; never a Python repr).
    """
    if not isinstance(value, list) or not value:
        return value
    for item in value:
        if not isinstance(item, dict) or "role" not in item:
            return value
    rendered: list[JsonValue] = []
    for item in value:
        assert isinstance(item, dict)  # checked above; narrows for mypy
        rename = "text" in item and "content" not in item
        rendered.append(
            {
                ("content" if rename and key == "text" else key): inner
                for key, inner in item.items()
                if key != "files" or inner
            }
        )
    return rendered


# Exact types ``plain`` returns as they are (subclasses go through the checks in order).
_PLAIN_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
# Deeper values are copied (the copy recurses as it always did).
_MAX_SHARED_DEPTH: Final = 64


def plain(value: object) -> JsonValue:
    """A record value (mappings, tuples, Decimals, enums) as plain JSON."""
    # This runs on every input and output of every node. Most values are plain JSON already
    # (dicts with text keys, lists, exact scalars): those are shared rather than copied, as
    # nothing mutates a record's values or a tree's.
    scalars = _PLAIN_SCALARS
    if type(value) in scalars:
        return value  # type: ignore[return-value]
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str or (
                type(item) not in scalars and not _already_plain(item, 1)
            ):
                return {
                    (k if type(k) is str else str(k)): (v if type(v) in scalars else plain(v))
                    for k, v in value.items()
                }
        return value
    if type(value) is list or type(value) is tuple:
        if type(value) is list and _already_plain(value, 0):
            return value
        return [item if type(item) in scalars else plain(item) for item in value]
    return _plain_other(value)


def _already_plain(value: object, depth: int = 0) -> bool:
    # True when plain(value) would equal ``value`` itself: dicts with text keys and lists,
    # of exact scalars or of such dicts and lists (a tuple would become a list).
    scalars = _PLAIN_SCALARS
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in scalars and (
                depth >= _MAX_SHARED_DEPTH or not _already_plain(item, depth + 1)
            ):
                return False
        return True
    if type(value) is list:
        for item in value:
            if type(item) not in scalars and (
                depth >= _MAX_SHARED_DEPTH or not _already_plain(item, depth + 1)
            ):
                return False
        return True
    return False


def _plain_other(value: object) -> JsonValue:
    # Subclasses and the types a record may hold besides JSON.
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
    seed_id: str | None = None,
) -> Observation:
    """Build one observation: id from ``seed``, inputs rendered and capped, and, for a
    ``model_call``, model, parameters, usage, cost and first-token time. ``model_name``
    alone (no recorded call) names the model and marks usage and cost unknown.
    ``seed_id`` is ``ids.observation_id(seed)`` when the caller has it already (a parent
    whose id its children needed first), to save hashing the seed again.

    A field over the size cap is cut with a marker and ``opstrail_truncated: true`` goes
    into the observation's metadata.
    """
    # The caller's dict is kept as it is unless keys are added here (then copied first):
    # builders pass a fresh dict per observation, and copying every one costs.
    meta: Mapping[str, JsonValue] = metadata if type(metadata) is dict else dict(metadata or {})
    # Inputs and outputs rendered (chat messages) and cut to the field cap; ``None`` always
    # fits. Written out for both (no helper): this runs twice per observation.
    if input_ is None:
        rendered_in, cut_in = None, False
    else:
        if isinstance(input_, list):
            input_ = render_io(input_)
        rendered_in, cut_in = truncate_json(input_, FIELD_CAP_BYTES)
    if output is None:
        rendered_out, cut_out = None, False
    else:
        if isinstance(output, list):
            output = render_io(output)
        rendered_out, cut_out = truncate_json(output, FIELD_CAP_BYTES)
    if cut_in or cut_out:
        meta = {**meta, TRUNCATION_METADATA_KEY: True}
    if verdict is None:
        verdict = OK
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
        added = dict(meta)
        added.update(cost_meta)
        added.setdefault("model_provider", model_call.provider)
        added.setdefault("streaming", model_call.streaming)
        meta = added
        completion_start = first_token_time(model_call.start_time, model_call.time_to_first_token)
    elif model_name is not None:
        model = model_name
        meta = {**meta, UNPRICED_KEY: True, "usage_unknown": True}
    return new_observation(
        id=ids.observation_id(seed) if seed_id is None else seed_id,
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
        # The id is made just above; every builder's parent ids are observation ids made
        # the same way, and its trace id comes from resolve_trace_id or ids.trace_id and is
        # checked by Trace, once per trace.
        ids_checked=True,
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
    observations = trace.observations
    # Sets first; the loops that name the culprit run only when something is wrong.
    seen = {obs.id for obs in observations}
    if len(seen) != len(observations):
        found: set[str] = set()
        for obs in observations:
            if obs.id in found:
                raise TraceModelError(
                    f"observation id {obs.id} appears twice in trace {trace.id}"
                )
            found.add(obs.id)
    known = seen | trace.external_parent_ids
    parents = {obs.parent_id for obs in observations}
    parents.discard(None)
    if not parents <= known:
        for obs in observations:
            if obs.parent_id is not None and obs.parent_id not in known:
                raise TraceModelError(
                    f"observation {obs.name!r} has parent {obs.parent_id} missing from the trace"
                )
    return trace

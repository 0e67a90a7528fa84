"""Hypothesis strategies for trace trees: any shape the tree model allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from opstrail.tracing.tree import Cost, Level, Observation, ObservationType, Trace, Usage

_text = st.text(max_size=20)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.recursive(
    _scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_text, children, max_size=3)
    ),
    max_leaves=8,
)
_metadata = st.dictionaries(_text, _json, max_size=4)
_hex16 = st.binary(min_size=8, max_size=8).map(bytes.hex)
_hex32 = st.binary(min_size=16, max_size=16).map(bytes.hex)
_time = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_count = st.integers(min_value=0, max_value=10**9)


@st.composite
def _usage(draw: Any) -> Usage:
    details = draw(
        st.dictionaries(
            st.sampled_from(["input_cached_tokens", "output_reasoning_tokens"]), _count, max_size=2
        )
    )
    first, second = draw(_count), draw(_count)
    return Usage(
        input=first, output=second, total=first + second + sum(details.values()), details=details
    )


_cost = st.builds(
    Cost,
    total=st.floats(min_value=0, max_value=100),
    input=st.none() | st.floats(min_value=0, max_value=100),
    output=st.none() | st.floats(min_value=0, max_value=100),
)


@st.composite
def traces(draw: Any) -> Trace:
    trace_id = draw(_hex32)
    start = draw(_time)
    n = draw(st.integers(min_value=1, max_value=6))
    ids = draw(st.lists(_hex16, min_size=n + 1, max_size=n + 1, unique=True))
    with_root = draw(st.booleans()) or n == 1
    external = frozenset() if with_root else frozenset({ids[-1]})
    observations = []
    for index in range(n):
        kind = draw(st.sampled_from(list(ObservationType)))
        if index == 0:
            parent = None if with_root else ids[-1]
        else:
            parent = ids[draw(st.integers(min_value=0, max_value=index - 1))]
        generation = kind.generation_like and draw(st.booleans())
        begin = start + timedelta(microseconds=draw(st.integers(0, 10**9)))
        observations.append(
            Observation(
                id=ids[index],
                trace_id=trace_id,
                type=kind,
                name=draw(_text),
                start_time=begin,
                end_time=begin
                if kind is ObservationType.EVENT
                else begin + timedelta(milliseconds=draw(st.integers(0, 10**6))),
                parent_id=parent,
                input=draw(_json),
                output=draw(_json),
                metadata=draw(_metadata),
                level=draw(st.sampled_from(list(Level))),
                status_message=draw(st.none() | _text),
                model=draw(st.none() | _text) if generation else None,
                model_parameters=draw(st.none() | _metadata) if generation else None,
                usage=draw(st.none() | _usage()) if generation else None,
                cost=draw(st.none() | _cost) if generation else None,
                completion_start_time=draw(st.none() | _time) if generation else None,
                version=draw(st.none() | _text),
            )
        )
    return Trace(
        id=trace_id,
        name=draw(_text),
        timestamp=start,
        observations=tuple(observations),
        user_id=draw(st.none() | _text),
        session_id=draw(st.none() | _text),
        tags=tuple(draw(st.lists(_text, max_size=3))),
        metadata=draw(_metadata),
        environment=draw(st.sampled_from(["production", "debug", "staging-2"])),
        release=draw(st.none() | _text),
        version=draw(st.none() | _text),
        input=draw(_json),
        output=draw(_json),
        external_parent_ids=external,
    )

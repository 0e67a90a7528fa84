"""The builders' fast paths give exactly what the plain constructions give: the draft-built
tree objects, the orjson-measured field cap, the copy-free ``plain`` and ``check_tree``."""

from __future__ import annotations

import dataclasses
import inspect
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

import orjson
import pytest

from opstrail.errors import NaiveDatetimeError, TraceModelError
from opstrail.tracing.builders.common import check_tree, plain
from opstrail.tracing.limits import json_size, truncate_json, truncate_text
from opstrail.tracing.tree import (
    Cost,
    Level,
    Observation,
    ObservationType,
    Trace,
    Usage,
    new_cost,
    new_observation,
    new_trace,
    new_usage,
)

T0 = datetime(2026, 8, 1, 9, 30, tzinfo=UTC)
TRACE_ID = "0" * 31 + "1"
OBS_ID = "a" * 16
PARENT_ID = "b" * 16


def _observation_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": OBS_ID,
        "trace_id": TRACE_ID,
        "type": ObservationType.GENERATION,
        "name": "llm",
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=2),
        "parent_id": PARENT_ID,
        "input": [{"role": "user", "content": "hi"}],
        "output": "hello",
        "metadata": {"node_id": "llm-1"},
        "level": Level.WARNING,
        "status_message": "slow",
        "model": "gpt-4o-mini",
        "model_parameters": {"temperature": 0.7},
        "usage": Usage(input=3, output=2, total=5),
        "cost": Cost(total=0.5, input=0.2, output=0.3),
        "completion_start_time": T0 + timedelta(seconds=1),
        "version": "v1",
    }
    fields.update(changes)
    return fields


def test_new_observation_takes_every_field_of_observation() -> None:
    """new_observation names exactly Observation's fields, so none is left unset."""
    parameters = set(inspect.signature(new_observation).parameters) - {"ids_checked"}
    assert parameters == {f.name for f in dataclasses.fields(Observation)}


@pytest.mark.parametrize("ids_checked", [False, True])
def test_new_observation_equals_the_dataclass_constructor(ids_checked: bool) -> None:
    """The draft-built observation is an Observation equal to Observation(...), frozen."""
    built = new_observation(**_observation_fields(), ids_checked=ids_checked)
    assert type(built) is Observation
    assert built == Observation(**_observation_fields())
    assert dataclasses.astuple(built) == dataclasses.astuple(Observation(**_observation_fields()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "other"  # type: ignore[misc]


def test_new_observation_stores_times_in_utc_like_the_constructor() -> None:
    """An aware time in another zone is stored in UTC, as Observation(...) stores it."""
    india = timezone(timedelta(hours=5, minutes=30))
    fields = _observation_fields(
        start_time=T0.astimezone(india), completion_start_time=T0.astimezone(india)
    )
    built = new_observation(**fields, ids_checked=True)
    assert built.start_time.tzinfo is UTC
    assert built.completion_start_time is not None
    assert built.completion_start_time.tzinfo is UTC
    assert built == Observation(**fields)


@pytest.mark.parametrize("ids_checked", [False, True])
def test_new_observation_refuses_naive_times(ids_checked: bool) -> None:
    """A naive time raises NaiveDatetimeError whether or not the ids are checked."""
    fields = _observation_fields(end_time=datetime(2026, 8, 1, 9, 31))
    with pytest.raises(NaiveDatetimeError):
        new_observation(**fields, ids_checked=ids_checked)


@pytest.mark.parametrize("ids_checked", [False, True])
def test_new_observation_refuses_model_on_a_span(ids_checked: bool) -> None:
    """A span with model, usage or cost is a TraceModelError on both paths."""
    fields = _observation_fields(type=ObservationType.SPAN)
    with pytest.raises(TraceModelError):
        new_observation(**fields, ids_checked=ids_checked)


@pytest.mark.parametrize(
    "change", [{"id": "A" * 16}, {"trace_id": "1234"}, {"parent_id": "not-hex-at-all!!"}]
)
def test_new_observation_checks_ids_unless_told_they_are_checked(change: dict[str, str]) -> None:
    """Without ids_checked, a malformed id raises TraceModelError like Observation(...)."""
    with pytest.raises(TraceModelError):
        Observation(**_observation_fields(**change))
    with pytest.raises(TraceModelError):
        new_observation(**_observation_fields(**change))


def test_new_trace_usage_and_cost_equal_their_dataclass_constructors() -> None:
    """new_trace, new_usage and new_cost build the same frozen objects as the classes."""
    observation = Observation(**_observation_fields(parent_id=None))
    trace_fields: dict[str, Any] = {
        "id": TRACE_ID,
        "name": "message",
        "timestamp": T0.astimezone(timezone(-timedelta(hours=8))),
        "observations": (observation,),
        "user_id": "u",
        "session_id": "s",
        "tags": ("message",),
        "metadata": {"k": 1},
        "environment": "debug",
        "release": "r1",
        "version": "v1",
        "input": {"query": "q"},
        "output": "a",
        "external_parent_ids": frozenset({PARENT_ID}),
    }
    assert set(trace_fields) == {f.name for f in dataclasses.fields(Trace)}
    trace = new_trace(**trace_fields)
    assert type(trace) is Trace
    assert trace == Trace(**trace_fields)
    assert trace.timestamp.tzinfo is UTC
    with pytest.raises(TraceModelError):
        new_trace(**{**trace_fields, "id": "x"})
    usage = new_usage(3, 2, 5, {"input_cached_tokens": 1})
    assert type(usage) is Usage
    assert usage == Usage(input=3, output=2, total=5, details={"input_cached_tokens": 1})
    cost = new_cost(0.5, None, 0.25)
    assert type(cost) is Cost
    assert cost == Cost(total=0.5, output=0.25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.total = 1.0  # type: ignore[misc]


# --- truncate_json: the standard library's answer, however it is reached ------------------


class _Colour(StrEnum):
    RED = "red"


class _Plain(Enum):
    A = "a"


def _reference_truncate(value: Any, cap_bytes: int) -> tuple[Any, bool]:
    # truncate_json as it was: every value measured with the standard library.
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size <= cap_bytes:
        return value, False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return truncate_text(text, cap_bytes), True


def _outcome(function: Any, value: Any, cap_bytes: int) -> tuple[str, Any]:
    try:
        return "ok", function(value, cap_bytes)
    except Exception as exc:  # the same error type is part of the answer
        return "raises", type(exc)


VALUES: list[Any] = [
    "plain ascii",
    "",
    "control \x00\x01\x1f and \" \\ \n\t",
    "non-ascii é 😀 \u2028",
    "lone surrogate \ud800",
    {"text": "draft 1"},
    {"nested": {"list": [1, 2.5, None, True, "x"]}, "t": (1, 2)},
    [{"role": "user", "content": "hi"}],
    {"floats": [float("nan"), float("inf"), -float("inf"), 1e-07, 1.5e-05, 1e16, -0.0]},
    {"big": 2**70},
    {1: "int key", None: "none key"},
    {_Colour.RED: "enum key"},
    {"enum": _Colour.RED},
    {"uuid": uuid.UUID(int=7)},
    {"plain enum": _Plain.A},
    {"decimal": Decimal("1.5")},
    {"set": {1}},
    12345678901234567890123,
    3.25,
    None,
    True,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_truncate_json_gives_the_standard_librarys_answer_at_every_cap(value: Any) -> None:
    """Around the value's own size (where a shortcut could err) and at fixed caps, the
    result, the cut flag and any error are those of measuring with the standard library."""
    caps = [0, 1, 4, 64, 262_144]
    try:
        size = json_size(value)
    except Exception:
        size = None
    if size is not None:
        caps += [size - 1, size, size + 1, size // 6, size * 4 // 25]
    for cap in caps:
        assert _outcome(truncate_json, value, cap) == _outcome(_reference_truncate, value, cap)


def test_orjson_spells_every_character_as_the_standard_library_does() -> None:
    """The premise of measuring text with orjson: every code point but the surrogates (which
    both refuse) comes out byte for byte as ``json.dumps(ensure_ascii=False)`` writes it."""
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    standard = json.dumps({text: [text]}, ensure_ascii=False, separators=(",", ":"))
    assert orjson.dumps({text: [text]}) == standard.encode("utf-8")


@pytest.mark.parametrize("count", [43_690, 43_691, 43_692])
def test_truncate_json_decides_long_floats_lists_like_the_standard_library(count: int) -> None:
    """A list of floats whose spelling differs between orjson and the standard library
    (``1e-07`` is 5 bytes there, 4 in orjson) is kept or cut exactly at the real size."""
    value = [1e-07] * count
    cap = json_size([1e-07] * 43_691)
    assert truncate_json(value, cap) == _reference_truncate(value, cap)


# --- plain and check_tree -------------------------------------------------------------------


def _reference_plain(value: Any) -> Any:
    # plain as it was: always a fresh copy.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): _reference_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reference_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    raise AssertionError(type(value))


@pytest.mark.parametrize(
    "value",
    [
        {"text": "draft 1", "n": 2, "f": 0.5, "ok": True, "none": None},
        {"nested": {"deeper": [1, {"x": "y"}]}},
        {"tuple": (1, (2, 3))},
        {1: "a", 2.5: "b", None: "c"},
        {"price": Decimal("0.000160"), "at": T0, "colour": _Colour.RED},
        [1, [2, [3]]],
        (1, "x"),
    ],
)
def test_plain_equals_a_fresh_json_copy(value: Any) -> None:
    """plain gives JSON equal, type for type, to converting every level afresh."""
    got, expected = plain(value), _reference_plain(value)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)
    assert type(got) is type(expected)


def test_plain_refuses_values_that_are_not_json() -> None:
    """A set inside a record value is a TraceModelError, as before."""
    with pytest.raises(TraceModelError):
        plain({"ok": [1, {"bad": {1, 2}}]})


def _trace_of(*observations: Observation) -> Trace:
    return Trace(id=TRACE_ID, name="t", timestamp=T0, observations=observations)


def test_check_tree_names_the_first_repeated_id() -> None:
    """Two observations with one id: the error names that id."""
    root = Observation(
        **_observation_fields(
            parent_id=None, type=ObservationType.CHAIN, model=None, usage=None, cost=None
        )
    )
    child = Observation(**_observation_fields(id=PARENT_ID, parent_id=OBS_ID))
    with pytest.raises(TraceModelError, match=f"observation id {PARENT_ID} appears twice"):
        check_tree(_trace_of(root, child, child))


def test_check_tree_names_the_first_observation_with_a_missing_parent() -> None:
    """A parent neither in the trace nor external: the error names the orphan."""
    orphan = Observation(**_observation_fields(id=PARENT_ID, parent_id="c" * 16, name="lost"))
    with pytest.raises(TraceModelError, match=r"observation 'lost' has parent c{16} missing"):
        check_tree(_trace_of(orphan))
    assert check_tree(
        dataclasses.replace(_trace_of(orphan), external_parent_ids=frozenset({"c" * 16}))
    ).observations == (orphan,)

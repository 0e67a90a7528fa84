"""Shared wire conversions: JSON text, times, usage, cost and model parameters."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

from opstrail.exporters.fields import (
    cost_details,
    iso_z,
    json_bytes,
    json_text,
    model_parameters,
    observation_text,
    unix_nanos,
    usage_details,
)
from opstrail.tracing.tree import Cost, Usage
from opstrail.tracing.values import JsonValue


def test_json_text_is_compact_utf8_and_turns_nan_into_null() -> None:
    """Compact separators, UTF-8 kept, NaN/inf as null (JSON has no such numbers)."""
    assert json_text({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'
    assert json.loads(json_text({"x": math.nan, "y": [math.inf]})) == {"x": None, "y": [None]}


def test_json_bytes_falls_back_for_huge_ints_and_mapping_proxies() -> None:
    """Integers beyond 64 bits stay exact; read-only mappings serialize like dicts."""
    assert json.loads(json_bytes({"big": 2**80, "n": math.nan})) == {"big": 2**80, "n": None}
    assert json.loads(json_bytes(MappingProxyType({"k": (1, 2)}))) == {"k": [1, 2]}
    assert json.loads(json_bytes({"m": MappingProxyType({"big": 2**70})})) == {"m": {"big": 2**70}}


def test_observation_text_keeps_plain_strings() -> None:
    """A str input is sent as is; other values as JSON."""
    assert observation_text("hello") == "hello"
    assert observation_text(["hello"]) == '["hello"]'


def test_times_are_utc_z_and_exact_nanoseconds() -> None:
    """ISO with Z and microseconds; epoch nanoseconds without float rounding."""
    when = datetime(2026, 8, 22, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert iso_z(when) == "2026-08-22T10:00:00.999999Z"
    assert unix_nanos(when) == 1787392800_999999000
    assert unix_nanos(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_usage_and_cost_details_always_hold_total() -> None:
    """usageDetails has input, output, detail buckets and total; costDetails always total."""
    usage = Usage(input=10, output=5, total=18, details={"input_cached_tokens": 3})
    assert usage_details(usage) == {"input": 10, "output": 5, "input_cached_tokens": 3, "total": 18}
    assert cost_details(Cost(total=0.5)) == {"total": 0.5}
    assert cost_details(Cost(total=0.5, input=0.2, output=0.3)) == {
        "input": 0.2,
        "output": 0.3,
        "total": 0.5,
    }


def test_model_parameters_keep_map_values_and_encode_the_rest() -> None:
    """String, number, bool, null and string lists stay; objects and mixed lists become JSON."""
    params: dict[str, JsonValue] = {
        "temperature": 0.2,
        "max_tokens": 100,
        "stream": False,
        "stop": ["a", "b"],
        "seed": None,
        "response_format": {"type": "json_object"},
        "mixed": [1, "a"],
    }
    assert model_parameters(params) == {
        "temperature": 0.2,
        "max_tokens": 100,
        "stream": False,
        "stop": ["a", "b"],
        "seed": None,
        "response_format": '{"type":"json_object"}',
        "mixed": '[1,"a"]',
    }

"""The shared conversions' fast paths give exactly what the plain standard-library forms give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from opstrail.exporters.fields import iso_z, json_text, model_parameters, unix_nanos
from opstrail.tracing.values import JsonValue

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_zones = st.one_of(
    st.just(UTC),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)
_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_zones
)


@given(_times)
def test_iso_z_is_isoformat_with_z_for_any_aware_time(value: datetime) -> None:
    """iso_z writes what isoformat(timespec="microseconds") writes in UTC, with Z."""
    expected = value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert iso_z(value) == expected


@given(_times)
def test_unix_nanos_is_exact_for_any_aware_time(value: datetime) -> None:
    """unix_nanos equals the whole microseconds since the epoch times 1000."""
    assert unix_nanos(value) == (value - _EPOCH) // timedelta(microseconds=1) * 1000


def test_model_parameters_copy_plain_values_in_order() -> None:
    """Numbers, strings, booleans and null pass unchanged, in order, in a new dict."""
    params: dict[str, JsonValue] = {"temperature": 0.2, "max_tokens": 9, "stream": True, "x": None}
    result = model_parameters(params)
    assert result == params and list(result) == list(params)
    assert result is not params


def test_model_parameters_encode_only_the_non_map_values() -> None:
    """One nested value among plain ones becomes JSON text; the others stay as they are."""
    params: dict[str, JsonValue] = {"top_p": 1, "format": {"type": "json"}, "stop": ["a"]}
    assert model_parameters(params) == {
        "top_p": 1,
        "format": json_text({"type": "json"}),
        "stop": ["a"],
    }

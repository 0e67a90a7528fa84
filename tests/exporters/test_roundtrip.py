"""Property: no field is lost between the trace tree and either wire format."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporters.openapi import validate_event
from exporters.strategies import traces
from exporters.wire import check_legacy, check_otlp
from opstrail.exporters.legacy.encode import encode_batch
from opstrail.exporters.otlp.encode import encode_traces
from opstrail.tracing.tree import Trace


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(traces(), min_size=1, max_size=3, unique_by=lambda t: t.id))
def test_otlp_encoding_loses_no_field(batch: list[Trace]) -> None:
    """Any tree, decoded from OTLP protobuf, still has every field (documented moves aside)."""
    check_otlp(encode_traces(batch), batch)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(traces(), min_size=1, max_size=3, unique_by=lambda t: t.id))
def test_legacy_encoding_loses_no_field_and_stays_schema_valid(batch: list[Trace]) -> None:
    """Any tree, as a legacy batch, has every field and only schema-valid events."""
    body = encode_batch(batch)
    check_legacy(body, batch)
    for event in body["batch"]:
        validate_event(event)

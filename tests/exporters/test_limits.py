"""shrink_trace: a trace over a cap has its largest fields cut, visibly, and nothing else."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporters.strategies import traces
from exporters.trees import chat_trace, workflow_trace
from opstrail.exporters.limits import MIN_FIELD_BYTES, _fields, estimate_size, shrink_trace
from opstrail.exporters.otlp.encode import encode_bytes
from opstrail.tracing.limits import TRUNCATION_METADATA_KEY
from opstrail.tracing.tree import Trace


def _with_big_output(trace: Trace, size: int) -> Trace:
    llm = trace.observations[4]
    big = replace(llm, output={"content": "x" * size})
    return replace(trace, observations=(*trace.observations[:4], big, *trace.observations[5:]))


def test_shrink_trace_returns_the_same_trace_when_it_fits() -> None:
    """A trace under the cap comes back unchanged (the same object)."""
    trace = chat_trace()
    assert shrink_trace(trace, 10_000_000) is trace


def test_shrink_trace_cuts_the_largest_field_with_a_marker() -> None:
    """The largest output is cut with a visible marker and flagged in metadata."""
    trace = _with_big_output(chat_trace(), 2_000_000)
    shrunk = shrink_trace(trace, 500_000)
    assert estimate_size(shrunk) <= 500_000
    llm = shrunk.observations[4]
    assert isinstance(llm.output, str)
    assert "…[truncated " in llm.output
    assert llm.metadata[TRUNCATION_METADATA_KEY] is True
    # Everything else is untouched: ids, times, usage, other observations.
    assert llm.usage == trace.observations[4].usage
    assert llm.id == trace.observations[4].id
    assert shrunk.observations[:4] == trace.observations[:4]
    assert shrunk.metadata == trace.metadata


def test_shrink_trace_fits_the_real_encoder() -> None:
    """With the OTLP encoder as the measure, the encoded trace ends under the cap."""
    trace = _with_big_output(chat_trace(), 3_000_000)
    cap = 1_000_000

    def measure(t: Trace) -> int:
        return len(encode_bytes([t]))

    assert measure(trace) > cap
    assert measure(shrink_trace(trace, cap, measure=measure)) <= cap


def test_shrink_trace_cuts_trace_metadata_values_and_flags_the_trace() -> None:
    """A huge trace metadata value is cut (it is repeated on every span on OTLP)."""
    trace = replace(workflow_trace(10), metadata={"app_id": "a", "blob": "y" * 200_000})

    def measure(t: Trace) -> int:
        return len(encode_bytes([t]))

    shrunk = shrink_trace(trace, 300_000, measure=measure)
    assert measure(shrunk) <= 300_000
    assert shrunk.metadata["app_id"] == "a"
    assert str(shrunk.metadata["blob"]).endswith("bytes]")
    assert shrunk.metadata[TRUNCATION_METADATA_KEY] is True


def test_shrink_trace_gives_up_when_nothing_is_left_to_cut() -> None:
    """A cap below the bare structure returns a trace cut as far as possible, not a loop."""
    trace = _with_big_output(chat_trace(), 50_000)
    shrunk = shrink_trace(trace, 10)
    assert len(str(shrunk.observations[4].output)) < 2_000


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(), st.integers(min_value=2_000, max_value=60_000), st.integers(0, 200_000))
def test_shrink_trace_fits_or_cuts_everything_and_keeps_the_skeleton(
    trace: Trace, cap: int, padding: int
) -> None:
    """Any trace ends under the cap, or with every big field cut; ids, times, usage unchanged."""
    root = replace(trace.observations[0], output="p" * padding)
    trace = replace(trace, observations=(root, *trace.observations[1:]))

    def measure(t: Trace) -> int:
        return len(encode_bytes([t]))

    shrunk = shrink_trace(trace, cap, measure=measure)
    if measure(shrunk) > cap:
        assert all(size <= MIN_FIELD_BYTES + 200 for size, _ in _fields(shrunk))
    for before, after in zip(trace.observations, shrunk.observations, strict=True):
        assert (after.id, after.parent_id, after.start_time, after.end_time) == (
            before.id,
            before.parent_id,
            before.start_time,
            before.end_time,
        )
        assert (after.usage, after.cost, after.model, after.level) == (
            before.usage,
            before.cost,
            before.model,
            before.level,
        )
    assert (shrunk.id, shrunk.name, shrunk.tags) == (trace.id, trace.name, trace.tags)

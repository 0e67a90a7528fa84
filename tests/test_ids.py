"""The frozen id rules of opstrail.ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opstrail import ids
from opstrail.errors import InvalidIdError


def test_trace_id_of_uuid_drops_dashes() -> None:
    """A UUID domain id becomes the trace id without dashes (contract §3.4 example)."""
    assert ids.trace_id("3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b") == "3f2b1c9e8d7a4e6f9a0b1c2d3e4f5a6b"


def test_trace_id_of_other_value_is_sha256_prefix() -> None:
    """A non-UUID domain id is sha256-hashed and cut to 32 hex characters."""
    import hashlib

    assert ids.trace_id("run-7") == hashlib.sha256(b"run-7").hexdigest()[:32]


def test_observation_id_is_sha256_prefix_of_seed() -> None:
    """Observation ids are the first 16 hex characters of sha256(seed)."""
    import hashlib

    seed = "msg:3f2b1c9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b:llm"
    assert ids.observation_id(seed) == hashlib.sha256(seed.encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ("3F2B1C9E-8D7A-4E6F-9A0B-1C2D3E4F5A6B", "3f2b1c9e8d7a4e6f9a0b1c2d3e4f5a6b"),
    ],
)
def test_external_trace_id_keeps_hex_and_uuid(raw: str, expected: str) -> None:
    """A caller's 32-hex id is used as is; a UUID loses its dashes."""
    assert ids.external_trace_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "has space", "x" * 129, "semi;colon"])
def test_external_trace_id_rejects_bad_values(raw: str) -> None:
    """Values outside ^[A-Za-z0-9_-]{1,128}$ are refused with a clear error."""
    with pytest.raises(InvalidIdError):
        ids.external_trace_id(raw)


@given(st.text(min_size=1))
def test_ids_are_stable_and_well_formed(seed: str) -> None:
    """Any seed gives the same, well-formed ids every time."""
    assert ids.trace_id(seed) == ids.trace_id(seed)
    assert ids.TRACE_ID_RE.match(ids.trace_id(seed))
    assert ids.OBSERVATION_ID_RE.match(ids.observation_id(seed))

"""The vendor-neutral trace tree: a trace and its observations.

Builders (``opstrail.tracing.build``) make these from trace-info records; exporters serialize
them. Every id is already final here (32-hex trace id, 16-hex observation ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from opstrail.errors import TraceModelError
from opstrail.ids import OBSERVATION_ID_RE, TRACE_ID_RE
from opstrail.tracing.values import JsonValue, require_utc

_OBSERVATION_ID_MATCH: Final = OBSERVATION_ID_RE.match
_TRACE_ID_MATCH: Final = TRACE_ID_RE.match


class ObservationType(StrEnum):
    """Langfuse observation types opstrail emits (``langfuse.observation.type``)."""

    SPAN = "span"
    GENERATION = "generation"
    TOOL = "tool"
    RETRIEVER = "retriever"
    GUARDRAIL = "guardrail"
    AGENT = "agent"
    CHAIN = "chain"
    EVENT = "event"

    @property
    def generation_like(self) -> bool:
        """True for types that may carry model, usage and cost (all but span and event)."""
        return self not in (ObservationType.SPAN, ObservationType.EVENT)


class Level(StrEnum):
    """Observation level, as Langfuse spells it."""

    DEBUG = "DEBUG"
    DEFAULT = "DEFAULT"
    WARNING = "WARNING"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one model call. Buckets are exclusive; ``total`` is their sum.

    ``details`` holds extra exclusive buckets such as ``input_cached_tokens``.
    """

    input: int
    output: int
    total: int
    details: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost of one model call in USD. ``total`` is always present."""

    total: float
    input: float | None = None
    output: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One node of the trace tree.

    ``parent_id`` is ``None`` only for the root observation. ``end_time`` equals
    ``start_time`` for events.
    """

    id: str
    trace_id: str
    type: ObservationType
    name: str
    start_time: datetime
    end_time: datetime
    parent_id: str | None = None
    input: JsonValue = None
    output: JsonValue = None
    metadata: Mapping[str, JsonValue] = field(default_factory=dict)
    level: Level = Level.DEFAULT
    status_message: str | None = None
    model: str | None = None
    model_parameters: Mapping[str, JsonValue] | None = None
    usage: Usage | None = None
    cost: Cost | None = None
    completion_start_time: datetime | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not _OBSERVATION_ID_MATCH(self.id):
            raise TraceModelError(f"observation id {self.id!r} is not 16 lowercase hex")
        if not _TRACE_ID_MATCH(self.trace_id):
            raise TraceModelError(f"trace id {self.trace_id!r} is not 32 lowercase hex")
        if self.parent_id is not None and not _OBSERVATION_ID_MATCH(self.parent_id):
            raise TraceModelError(f"parent id {self.parent_id!r} is not 16 lowercase hex")
        _check_times_and_type(self)


def _check_times_and_type(obs: Observation) -> None:
    """Store the times of ``obs`` in UTC (refusing naive ones) and refuse model, usage or
    cost on a type that cannot carry them: ``Observation.__post_init__`` after the ids."""
    # A time already in UTC (the usual case) is kept as is, which is what require_utc
    # would return.
    if obs.start_time.tzinfo is not UTC:
        object.__setattr__(obs, "start_time", require_utc(obs.start_time, "start_time"))
    if obs.end_time.tzinfo is not UTC:
        object.__setattr__(obs, "end_time", require_utc(obs.end_time, "end_time"))
    first_token = obs.completion_start_time
    if first_token is not None and first_token.tzinfo is not UTC:
        object.__setattr__(
            obs, "completion_start_time", require_utc(first_token, "completion_start_time")
        )
    if (obs.usage or obs.cost or obs.model) and not obs.type.generation_like:
        raise TraceModelError(
            f"observation {obs.name!r} of type {obs.type} cannot carry model, usage or cost"
        )


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole trace: trace-wide fields plus its observations, root first.

    ``external_parent_ids`` names observations of this trace that an earlier record already
    exported (the conversation-title trace adds a child to a root sent before); a parent id
    must be either in ``observations`` or in this set.
    """

    id: str
    name: str
    timestamp: datetime
    observations: tuple[Observation, ...]
    user_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, JsonValue] = field(default_factory=dict)
    environment: str = "production"
    release: str | None = None
    version: str | None = None
    input: JsonValue = None
    output: JsonValue = None
    external_parent_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not TRACE_ID_RE.match(self.id):
            raise TraceModelError(f"trace id {self.id!r} is not 32 lowercase hex")
        object.__setattr__(self, "timestamp", require_utc(self.timestamp, "timestamp"))

    @property
    def root(self) -> Observation | None:
        """The observation without a parent, or ``None`` when the root was exported earlier."""
        for observation in self.observations:
            if observation.parent_id is None:
                return observation
        return None


@dataclass(frozen=True, slots=True)
class Score:
    """A score (user feedback) on a trace."""

    id: str
    trace_id: str
    name: str
    value: float | str
    data_type: str  # NUMERIC | BOOLEAN | CATEGORICAL
    timestamp: datetime
    comment: str | None = None
    observation_id: str | None = None
    environment: str = "production"
    metadata: Mapping[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not TRACE_ID_RE.match(self.trace_id):
            raise TraceModelError(f"trace id {self.trace_id!r} is not 32 lowercase hex")
        object.__setattr__(self, "timestamp", require_utc(self.timestamp, "timestamp"))


# --- Fast construction, for the builders --------------------------------------------------
#
# A frozen dataclass's __init__ stores every field with object.__setattr__ (an attribute
# lookup and a call per field), and a class called with keywords goes through a dict of
# them: about half the cost of building an observation. The builders make every object of the
# tree through the functions below instead. Each fills a draft, a plain class with the very
# same slots, with ordinary attribute stores, then turns it into the frozen class by
# assigning ``__class__`` (Python allows it between classes of one layout, and checks that
# they are). The result is the same object ``Cls(...)`` makes; the same checks run.


def _draft_class(cls: type) -> type:
    """A mutable class laid out like slots dataclass ``cls``: same slots, same order."""
    return type(f"_{cls.__name__}Draft", (), {"__slots__": vars(cls)["__slots__"]})


_NEW_OBJECT: Final = object.__new__
_OBSERVATION_DRAFT: Final = _draft_class(Observation)
_TRACE_DRAFT: Final = _draft_class(Trace)
_USAGE_DRAFT: Final = _draft_class(Usage)
_COST_DRAFT: Final = _draft_class(Cost)


def new_observation(
    *,
    id: str,
    trace_id: str,
    type: ObservationType,
    name: str,
    start_time: datetime,
    end_time: datetime,
    parent_id: str | None,
    input: JsonValue,
    output: JsonValue,
    metadata: Mapping[str, JsonValue],
    level: Level,
    status_message: str | None,
    model: str | None,
    model_parameters: Mapping[str, JsonValue] | None,
    usage: Usage | None,
    cost: Cost | None,
    completion_start_time: datetime | None,
    version: str | None,
    ids_checked: bool = False,
) -> Observation:
    """``Observation(...)`` with every field given: the same object and the same checks,
    built faster (see above). A field added to ``Observation`` must be added here too
    (tests/tracing/test_trace_fast_paths.py compares the two).

    ``ids_checked=True`` skips matching the three ids against the id rules (the times and
    the type are still checked): for a caller whose ids come from ``opstrail.ids``, which
    only makes well-formed ones, and whose trace id ``Trace`` checks once per trace.
    """
    draft: Any = _NEW_OBJECT(_OBSERVATION_DRAFT)
    draft.id = id
    draft.trace_id = trace_id
    draft.type = type
    draft.name = name
    draft.start_time = start_time
    draft.end_time = end_time
    draft.parent_id = parent_id
    draft.input = input
    draft.output = output
    draft.metadata = metadata
    draft.level = level
    draft.status_message = status_message
    draft.model = model
    draft.model_parameters = model_parameters
    draft.usage = usage
    draft.cost = cost
    draft.completion_start_time = completion_start_time
    draft.version = version
    draft.__class__ = Observation
    obs: Observation = draft
    if ids_checked:
        _check_times_and_type(obs)
    else:
        obs.__post_init__()
    return obs


def new_trace(
    *,
    id: str,
    name: str,
    timestamp: datetime,
    observations: tuple[Observation, ...],
    user_id: str | None,
    session_id: str | None,
    tags: tuple[str, ...],
    metadata: Mapping[str, JsonValue],
    environment: str,
    release: str | None,
    version: str | None,
    input: JsonValue,
    output: JsonValue,
    external_parent_ids: frozenset[str],
) -> Trace:
    """``Trace(...)`` with every field given: the same object and checks, built faster
    (see above)."""
    draft: Any = _NEW_OBJECT(_TRACE_DRAFT)
    draft.id = id
    draft.name = name
    draft.timestamp = timestamp
    draft.observations = observations
    draft.user_id = user_id
    draft.session_id = session_id
    draft.tags = tags
    draft.metadata = metadata
    draft.environment = environment
    draft.release = release
    draft.version = version
    draft.input = input
    draft.output = output
    draft.external_parent_ids = external_parent_ids
    draft.__class__ = Trace
    trace: Trace = draft
    trace.__post_init__()
    return trace


def new_usage(input: int, output: int, total: int, details: Mapping[str, int]) -> Usage:
    """``Usage(input, output, total, details)``, built faster (see above)."""
    draft: Any = _NEW_OBJECT(_USAGE_DRAFT)
    draft.input = input
    draft.output = output
    draft.total = total
    draft.details = details
    draft.__class__ = Usage
    usage: Usage = draft
    return usage


def new_cost(total: float, input: float | None, output: float | None) -> Cost:
    """``Cost(total, input, output)``, built faster (see above)."""
    draft: Any = _NEW_OBJECT(_COST_DRAFT)
    draft.total = total
    draft.input = input
    draft.output = output
    draft.__class__ = Cost
    cost: Cost = draft
    return cost

"""The vendor-neutral trace tree: a trace and its observations.

Builders (``opstrail.tracing.build``) make these from trace-info records; exporters serialize
them. Every id is already final here (32-hex trace id, 16-hex observation ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from opstrail.errors import TraceModelError
from opstrail.ids import OBSERVATION_ID_RE, TRACE_ID_RE
from opstrail.tracing.values import JsonValue, optional_utc, require_utc


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
        if not OBSERVATION_ID_RE.match(self.id):
            raise TraceModelError(f"observation id {self.id!r} is not 16 lowercase hex")
        if not TRACE_ID_RE.match(self.trace_id):
            raise TraceModelError(f"trace id {self.trace_id!r} is not 32 lowercase hex")
        if self.parent_id is not None and not OBSERVATION_ID_RE.match(self.parent_id):
            raise TraceModelError(f"parent id {self.parent_id!r} is not 16 lowercase hex")
        object.__setattr__(self, "start_time", require_utc(self.start_time, "start_time"))
        object.__setattr__(self, "end_time", require_utc(self.end_time, "end_time"))
        object.__setattr__(
            self,
            "completion_start_time",
            optional_utc(self.completion_start_time, "completion_start_time"),
        )
        if (self.usage or self.cost or self.model) and not self.type.generation_like:
            raise TraceModelError(
                f"observation {self.name!r} of type {self.type} cannot carry model, usage or cost"
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

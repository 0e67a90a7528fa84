"""Per-app privacy and sampling policy, applied to a run's trace record before it is stored.

Three content modes:

- ``full``: the record as it is.
- ``masked``: every content string (inputs, outputs, query, answers, prompts, completions, tool
  arguments and results, documents, moderation texts, suggested questions, error messages) has
  each match of the mask patterns replaced by ``MASK_MARKER``. The default patterns catch
  e-mail addresses and payment card numbers. Ids, names, models and timings are untouched.
- ``metadata-only``: inputs, outputs and content-bearing metadata are removed (``query``,
  ``tool_inputs``, ``tool_outputs``, ``tool_parameters``, ``preset_response``, ``documents``,
  ``message_data``, node inputs/outputs/process_data, ``suggested_question``, agent thoughts,
  prompt messages and completions of model calls); timings, usage, models, statuses and ids
  stay. Error messages are kept, cut to 500 characters.

Sampling: successful runs are kept with probability ``sample_rate``, decided deterministically
from the trace id (``is_sampled``), so every observation and score of one trace gets the same
answer. Failed and errored runs are always kept.

Pure: stdlib, ``ids``, ``errors`` and the trace model only.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal, TypeVar, get_args

from opstrail import ids
from opstrail.errors import InvalidIdError, ValidationError
from opstrail.tracing.info import (
    AgentRound,
    DatasetRetrievalTraceInfo,
    FeedbackInfo,
    GenerateNameTraceInfo,
    MessageStatus,
    MessageTraceInfo,
    ModelCall,
    ModerationTraceInfo,
    NodeExecution,
    NodeStatus,
    RetrievedDocument,
    RootTraceInfo,
    SuggestedQuestionTraceInfo,
    ToolTraceInfo,
    WorkflowRunStatus,
    WorkflowTraceInfo,
)
from opstrail.tracing.limits import ERROR_CAP_CHARS, truncate_chars
from opstrail.tracing.values import JsonValue

ContentMode = Literal["full", "masked", "metadata-only"]
CONTENT_MODES: Final[tuple[str, ...]] = get_args(ContentMode)
MASK_MARKER: Final = "[masked]"
EMAIL_PATTERN: Final = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# 13 to 19 digits, optionally grouped by single spaces or dashes (Visa, Mastercard, Amex...).
CARD_NUMBER_PATTERN: Final = r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])"
DEFAULT_MASK_PATTERNS: Final[tuple[str, ...]] = (EMAIL_PATTERN, CARD_NUMBER_PATTERN)
MAX_MASK_PATTERNS: Final = 32
MAX_PATTERN_CHARS: Final = 500
# A quantified group that itself ends in a quantifier, such as (a+)+ or (\w*)*: the classic
# shape of a pattern that backtracks exponentially. Python's re has no timeout, and masking
# runs while a run is being recorded, so such patterns are refused. (A heuristic: it does not
# catch every slow pattern, e.g. (a|aa)+.)
_NESTED_QUANTIFIER: Final = re.compile(r"\((?:[^()\\]|\\.)*[+*}]\)[+*{]")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """What of a run's content reaches the tracing backend, and how many runs.

    Args:
        mode: ``full``, ``masked`` or ``metadata-only``.
        mask_patterns: regular expressions masked in ``masked`` mode (they replace the
            defaults; include ``DEFAULT_MASK_PATTERNS`` to keep those).
        sample_rate: share of successful runs kept, 0.0 to 1.0.

    Raises:
        ValidationError: code ``invalid_policy`` for an unknown mode, a rate outside [0, 1],
            or a pattern that does not compile (or too many, too long ones).
    """

    mode: ContentMode = "full"
    mask_patterns: tuple[str, ...] = DEFAULT_MASK_PATTERNS
    sample_rate: float = 1.0
    _compiled: tuple[re.Pattern[str], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.mode not in CONTENT_MODES:
            raise ValidationError(
                f"content_mode must be one of {', '.join(CONTENT_MODES)} (got {self.mode!r}).",
                code="invalid_policy",
            )
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ValidationError(
                f"sample_rate must be a number from 0.0 to 1.0 (got {rate!r}).",
                code="invalid_policy",
            )
        patterns = tuple(self.mask_patterns)
        object.__setattr__(self, "mask_patterns", patterns)
        object.__setattr__(self, "sample_rate", float(rate))
        object.__setattr__(self, "_compiled", compile_mask_patterns(patterns))


def compile_mask_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Compile mask patterns, refusing ones that cannot work.

    Raises:
        ValidationError: code ``invalid_policy``.
    """
    if all(isinstance(pattern, str) for pattern in patterns):
        # Every run's recording builds its app's policy: checking and compiling the same
        # patterns again cost a tenth of recording a chat message.
        return _compile_checked(patterns)
    return _compile(patterns)  # raises, for the pattern that is not a string


@functools.lru_cache(maxsize=256)
def _compile_checked(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return _compile(patterns)


def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    if len(patterns) > MAX_MASK_PATTERNS:
        raise ValidationError(
            f"At most {MAX_MASK_PATTERNS} mask patterns are allowed.", code="invalid_policy"
        )
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ValidationError(
                "A mask pattern must be a non-empty string.", code="invalid_policy"
            )
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ValidationError(
                f"A mask pattern may have at most {MAX_PATTERN_CHARS} characters.",
                code="invalid_policy",
            )
        if _NESTED_QUANTIFIER.search(pattern):
            raise ValidationError(
                f"Mask pattern {pattern!r} nests quantifiers (like (a+)+), which can take "
                "exponential time; simplify it.",
                code="invalid_policy",
            )
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ValidationError(
                f"Mask pattern {pattern!r} is not a valid regular expression: {exc}.",
                code="invalid_policy",
            ) from None
        if regex.search("") is not None:
            # A pattern matching the empty string would put a marker between every character.
            raise ValidationError(
                f"Mask pattern {pattern!r} matches empty text.", code="invalid_policy"
            )
        compiled.append(regex)
    return tuple(compiled)


FULL_POLICY: Final = ContentPolicy()


def is_sampled(trace_id: str, rate: float) -> bool:
    """Whether a successful trace is kept at ``rate``: the same answer for the same id.

    The id is hashed first, so ids with fixed digits (UUID versions) still spread evenly.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"sample:{trace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def root_trace_id(info: RootTraceInfo) -> str:
    """The Langfuse trace id a root record will get (decisions.md, "Ids").

    A title generation always lands on its conversation's trace; messages and workflow runs
    use the caller's trace id when one was given.
    """
    if isinstance(info, GenerateNameTraceInfo):
        return ids.trace_id(ids.seed_conversation_root(info.conversation_id))
    raw = info.context.external_trace_id
    if raw:
        try:
            return ids.external_trace_id(raw)
        except InvalidIdError:
            pass  # an invalid caller id was refused at the API; fall back to the domain id
    if isinstance(info, MessageTraceInfo):
        return ids.trace_id(info.message_id)
    return ids.trace_id(info.workflow_run_id)


def feedback_trace_id(feedback: FeedbackInfo) -> str:
    """The Langfuse trace id a feedback score lands on."""
    if feedback.trace_id_is_external:
        return ids.external_trace_id(feedback.trace_domain_id)
    return ids.trace_id(feedback.trace_domain_id)


def is_failed(info: RootTraceInfo) -> bool:
    """Whether a run failed or hit an error anywhere (such runs are never sampled out)."""
    if info.error:
        return True
    if isinstance(info, MessageTraceInfo):
        return info.status == MessageStatus.ERROR or any(t.error for t in info.tool_calls)
    if isinstance(info, WorkflowTraceInfo):
        return (
            info.status in (WorkflowRunStatus.FAILED, WorkflowRunStatus.PARTIAL_SUCCEEDED)
            or info.exceptions_count > 0
            or any(
                n.status in (NodeStatus.FAILED, NodeStatus.EXCEPTION) or n.error
                for n in info.node_executions
            )
        )
    return False


def apply_policy(info: RootTraceInfo, policy: ContentPolicy) -> RootTraceInfo | None:
    """Apply ``policy`` to a run's root record.

    Returns:
        The record to store (content masked or removed as the mode says), or ``None`` when
        the run is sampled out. Failed and errored runs are always kept.
    """
    if not is_failed(info) and not is_sampled(root_trace_id(info), policy.sample_rate):
        return None
    if policy.mode == "full":
        return info
    if policy.mode == "masked":
        return _transform(info, _Masker(policy._compiled))
    return _transform(info, _Stripper())


def apply_feedback_policy(feedback: FeedbackInfo, policy: ContentPolicy) -> FeedbackInfo | None:
    """Apply ``policy`` to a rating: ``None`` when its trace is sampled out.

    A failed run's trace is kept even when its id is not sampled; callers that know whether
    the rated trace was recorded should prefer that knowledge to this id-only decision.
    """
    if not is_sampled(feedback_trace_id(feedback), policy.sample_rate):
        return None
    if feedback.content is None or policy.mode == "full":
        return feedback
    if policy.mode == "masked":
        return replace(feedback, content=_Masker(policy._compiled).text(feedback.content))
    return replace(feedback, content=None)


# --- transformation -------------------------------------------------------------------------


class _Rules:
    """How each kind of field is treated; the walkers below decide where each kind is."""

    def json(self, value: JsonValue) -> JsonValue:
        raise NotImplementedError

    def mapping(self, value: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
        raise NotImplementedError

    def text(self, value: str) -> str:
        raise NotImplementedError

    def error(self, value: str | None) -> str | None:
        raise NotImplementedError

    def documents(self, docs: tuple[RetrievedDocument, ...]) -> tuple[RetrievedDocument, ...]:
        raise NotImplementedError

    def questions(self, questions: tuple[str, ...]) -> tuple[str, ...]:
        raise NotImplementedError


class _Masker(_Rules):
    def __init__(self, patterns: tuple[re.Pattern[str], ...]) -> None:
        self._patterns = patterns

    def text(self, value: str) -> str:
        for pattern in self._patterns:
            value = pattern.sub(MASK_MARKER, value)
        return value

    def json(self, value: JsonValue) -> JsonValue:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value

    def mapping(self, value: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
        return {k: self.json(v) for k, v in value.items()}

    def error(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def documents(self, docs: tuple[RetrievedDocument, ...]) -> tuple[RetrievedDocument, ...]:
        return tuple(replace(d, content=self.text(d.content)) for d in docs)

    def questions(self, questions: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.text(q) for q in questions)


class _Stripper(_Rules):
    def json(self, value: JsonValue) -> JsonValue:
        return None

    def mapping(self, value: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
        return {}

    def text(self, value: str) -> str:
        return ""

    def error(self, value: str | None) -> str | None:
        return None if value is None else truncate_chars(value, ERROR_CAP_CHARS)

    def documents(self, docs: tuple[RetrievedDocument, ...]) -> tuple[RetrievedDocument, ...]:
        return ()

    def questions(self, questions: tuple[str, ...]) -> tuple[str, ...]:
        return ()


def _opt(value: T | None, fn: Callable[[T], T]) -> T | None:
    return None if value is None else fn(value)


def _model_call(call: ModelCall, r: _Rules) -> ModelCall:
    return replace(
        call,
        prompt_messages=r.json(call.prompt_messages),
        completion=r.json(call.completion),
        error=r.error(call.error),
    )


def _moderation(m: ModerationTraceInfo, r: _Rules) -> ModerationTraceInfo:
    return replace(
        m,
        inputs=r.mapping(m.inputs),
        message_data=r.mapping(m.message_data),
        preset_response=r.text(m.preset_response),
        query=r.text(m.query),
        error=r.error(m.error),
    )


def _suggested(s: SuggestedQuestionTraceInfo, r: _Rules) -> SuggestedQuestionTraceInfo:
    return replace(
        s,
        message_data=r.mapping(s.message_data),
        inputs=r.json(s.inputs),
        outputs=r.json(s.outputs),
        suggested_question=r.questions(s.suggested_question),
        error=r.error(s.error),
        status_message=r.error(s.status_message),
        model_call=_opt(s.model_call, lambda c: _model_call(c, r)),
    )


def _retrieval(d: DatasetRetrievalTraceInfo, r: _Rules) -> DatasetRetrievalTraceInfo:
    return replace(
        d,
        inputs=r.json(d.inputs),
        documents=r.documents(d.documents),
        message_data=r.mapping(d.message_data),
        error=r.error(d.error),
    )


def _tool(t: ToolTraceInfo, r: _Rules) -> ToolTraceInfo:
    return replace(
        t,
        tool_inputs=r.mapping(t.tool_inputs),
        tool_outputs=r.json(t.tool_outputs),
        message_data=r.mapping(t.message_data),
        inputs=r.mapping(t.inputs),
        outputs=r.json(t.outputs),
        tool_parameters=r.mapping(t.tool_parameters),
        error=r.error(t.error),
    )


def _agent_round(a: AgentRound, r: _Rules) -> AgentRound:
    return replace(a, model_call=_model_call(a.model_call, r), thought=r.text(a.thought))


def _node(n: NodeExecution, r: _Rules) -> NodeExecution:
    return replace(
        n,
        inputs=r.mapping(n.inputs),
        process_data=r.mapping(n.process_data),
        outputs=r.mapping(n.outputs),
        error=r.error(n.error),
        model_calls=tuple(_model_call(c, r) for c in n.model_calls),
        documents=r.documents(n.documents),
    )


def _transform(info: RootTraceInfo, r: _Rules) -> RootTraceInfo:
    if isinstance(info, MessageTraceInfo):
        return replace(
            info,
            message_data=r.mapping(info.message_data),
            inputs=r.mapping(info.inputs),
            outputs=r.json(info.outputs),
            query=r.text(info.query),
            error=r.error(info.error),
            message_file_data=_opt(info.message_file_data, r.mapping),
            model_call=_opt(info.model_call, lambda c: _model_call(c, r)),
            agent_rounds=tuple(_agent_round(a, r) for a in info.agent_rounds),
            tool_calls=tuple(_tool(t, r) for t in info.tool_calls),
            dataset_retrievals=tuple(_retrieval(d, r) for d in info.dataset_retrievals),
            moderations=tuple(_moderation(m, r) for m in info.moderations),
            suggested_question=_opt(info.suggested_question, lambda s: _suggested(s, r)),
        )
    if isinstance(info, WorkflowTraceInfo):
        return replace(
            info,
            workflow_run_inputs=r.mapping(info.workflow_run_inputs),
            workflow_run_outputs=r.mapping(info.workflow_run_outputs),
            query=r.text(info.query),
            answer=_opt(info.answer, r.text),
            error=r.error(info.error),
            node_executions=tuple(_node(n, r) for n in info.node_executions),
            moderations=tuple(_moderation(m, r) for m in info.moderations),
            suggested_question=_opt(info.suggested_question, lambda s: _suggested(s, r)),
        )
    assert isinstance(info, GenerateNameTraceInfo)
    return replace(
        info,
        inputs=r.json(info.inputs),
        outputs=r.text(info.outputs),
        error=r.error(info.error),
        model_call=_opt(info.model_call, lambda c: _model_call(c, r)),
    )

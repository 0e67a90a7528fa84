"""``model_config`` of chat, agent-chat and completion apps -> a typed ``AppSpec``.

``parse_model_config`` returns the spec and the import warnings, or refuses what opstrail
cannot honour, naming it (decisions.md "Runs"): external data tools, moderation types other
than keywords, agent strategies other than function calling / ReAct. Features that only change
presentation (speech, file upload, annotation replies) are accepted with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from opstrail.errors import DslError
from opstrail.runtime.dsl.parse import check_name
from opstrail.runtime.tools import builtin_tools

FORM_TYPES: Final = ("text-input", "paragraph", "select", "number")
HISTORY_WINDOW: Final = 10  # past exchanges (query + answer) sent to the model


@dataclass(frozen=True, slots=True)
class FormField:
    """One ``user_input_form`` field."""

    variable: str
    label: str
    type: str
    required: bool = False
    default: str | int | float | None = None
    options: tuple[str, ...] = ()
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    name: str
    mode: Literal["chat", "completion"] = "chat"
    completion_params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModerationSpec:
    """Keyword moderation (``sensitive_word_avoidance``)."""

    enabled: bool = False
    type: str = "keywords"
    keywords: tuple[str, ...] = ()
    inputs_enabled: bool = False
    inputs_preset_response: str = ""
    outputs_enabled: bool = False
    outputs_preset_response: str = ""


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Attached knowledge bases and retrieval settings."""

    dataset_ids: tuple[str, ...] = ()
    retrieval_model: str = "multiple"
    top_k: int = 4
    score_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class AgentToolSpec:
    tool_name: str
    provider_id: str = ""
    provider_type: str = "builtin"
    label: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    enabled: bool = False
    strategy: str = "function_call"
    max_iteration: int = 5
    tools: tuple[AgentToolSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class PromptMessageSpec:
    """An advanced-mode prompt message (``chat_prompt_config.prompt[]``)."""

    role: Literal["system", "user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class AppSpec:
    """Everything a chat, agent-chat or completion run needs from the DSL."""

    mode: str
    model: ModelSpec
    pre_prompt: str = ""
    prompt_type: str = "simple"
    advanced_chat_prompt: tuple[PromptMessageSpec, ...] = ()
    advanced_completion_prompt: str = ""
    user_input_form: tuple[FormField, ...] = ()
    opening_statement: str = ""
    suggested_questions: tuple[str, ...] = ()
    suggested_questions_after_answer: bool = False
    moderation: ModerationSpec = ModerationSpec()
    datasets: DatasetSpec = DatasetSpec()
    dataset_query_variable: str = ""
    agent: AgentSpec = AgentSpec()
    retriever_resource: bool = False
    history_window: int = HISTORY_WINDOW


def _enabled(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value.get("enabled"))


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _form(items: Any) -> tuple[tuple[FormField, ...], list[str]]:
    warnings: list[str] = []
    fields: list[FormField] = []
    if not isinstance(items, list):
        return (), warnings
    for item in items:
        if not isinstance(item, Mapping) or len(item) != 1:
            raise DslError("user_input_form items must be one-key mappings such as {text-input: {...}}")
        kind, body = next(iter(item.items()))
        if not isinstance(body, Mapping):
            raise DslError(f"user_input_form field {kind!r} has no settings")
        variable = _str(body.get("variable")).strip()
        if not variable:
            raise DslError(f"user_input_form field {kind!r} has no variable name")
        if kind == "external_data_tool":
            raise DslError(
                f"user_input_form field {variable!r} is an external data tool, which opstrail cannot run"
            )
        if kind not in FORM_TYPES:
            warnings.append(
                f"user_input_form field {variable!r} of type {kind!r} is not supported; it is ignored"
            )
            continue
        options = body.get("options") or []
        max_length = body.get("max_length")
        default = body.get("default")
        fields.append(
            FormField(
                variable=variable,
                label=_str(body.get("label")) or variable,
                type=kind,
                required=bool(body.get("required", False)),
                default=default if isinstance(default, (str, int, float)) and default != "" else None,
                options=tuple(str(o) for o in options) if isinstance(options, list) else (),
                max_length=int(max_length) if isinstance(max_length, int) and max_length > 0 else None,
            )
        )
    return tuple(fields), warnings


def _moderation(value: Any) -> ModerationSpec:
    if not _enabled(value):
        return ModerationSpec()
    kind = _str(value.get("type")) or "keywords"
    if kind != "keywords":
        raise DslError(
            f"sensitive_word_avoidance type {kind!r} is not supported (only 'keywords'); "
            "disable it or switch to keywords"
        )
    config = value.get("config") or {}
    keywords_text = config.get("keywords") if isinstance(config, Mapping) else ""
    if isinstance(keywords_text, list):
        keywords = tuple(str(k).strip() for k in keywords_text if str(k).strip())
    else:
        keywords = tuple(k.strip() for k in _str(keywords_text).splitlines() if k.strip())
    inputs = config.get("inputs_config") or {}
    outputs = config.get("outputs_config") or {}
    return ModerationSpec(
        enabled=True,
        type=kind,
        keywords=keywords,
        inputs_enabled=_enabled(inputs),
        inputs_preset_response=_str(inputs.get("preset_response")) if isinstance(inputs, Mapping) else "",
        outputs_enabled=_enabled(outputs),
        outputs_preset_response=_str(outputs.get("preset_response")) if isinstance(outputs, Mapping) else "",
    )


def _datasets(value: Any) -> tuple[DatasetSpec, list[str]]:
    warnings: list[str] = []
    if not isinstance(value, Mapping):
        return DatasetSpec(), warnings
    outer = value.get("datasets") or {}
    entries = outer.get("datasets") if isinstance(outer, Mapping) else outer
    ids: list[str] = []
    for entry in entries or []:
        dataset = entry.get("dataset") if isinstance(entry, Mapping) else None
        if isinstance(dataset, Mapping) and dataset.get("enabled", True) and dataset.get("id"):
            ids.append(str(dataset["id"]))
    if value.get("reranking_enable") and ids:
        warnings.append("reranking is not supported; retrieval ranks by BM25 full-text score")
    threshold = value.get("score_threshold")
    top_k = value.get("top_k")
    return (
        DatasetSpec(
            dataset_ids=tuple(ids),
            retrieval_model=_str(value.get("retrieval_model")) or "multiple",
            top_k=int(top_k) if isinstance(top_k, int) and top_k > 0 else 4,
            score_threshold=float(threshold)
            if value.get("score_threshold_enabled") and isinstance(threshold, (int, float))
            else None,
        ),
        warnings,
    )


def _agent(value: Any, mode: str) -> tuple[AgentSpec, list[str]]:
    warnings: list[str] = []
    if not isinstance(value, Mapping):
        return AgentSpec(), warnings
    enabled = bool(value.get("enabled")) and mode == "agent-chat"
    strategy = _str(value.get("strategy")) or "function_call"
    if enabled and strategy not in ("function_call", "react"):
        raise DslError(f"agent_mode strategy {strategy!r} is not supported (function_call or react)")
    if enabled and strategy == "react":
        warnings.append("agent_mode strategy 'react' runs as function calling")
    known = builtin_tools()
    tools: list[AgentToolSpec] = []
    for item in value.get("tools") or []:
        if not isinstance(item, Mapping) or not item.get("enabled", True) or item.get("isDeleted"):
            continue
        name = _str(item.get("tool_name"))
        if not name:
            continue
        provider_id = _str(item.get("provider_id"))
        if enabled and name not in known:
            warnings.append(
                f"tool {name!r} ({provider_id or 'unknown provider'}) is not available in opstrail; "
                "calls to it will fail"
            )
        params = item.get("tool_parameters")
        tools.append(
            AgentToolSpec(
                tool_name=name,
                provider_id=provider_id,
                provider_type=_str(item.get("provider_type")) or "builtin",
                label=_str(item.get("tool_label")) or name,
                parameters=dict(params) if isinstance(params, Mapping) else {},
            )
        )
    max_iteration = value.get("max_iteration")
    return (
        AgentSpec(
            enabled=enabled,
            strategy=strategy,
            max_iteration=min(max(int(max_iteration), 1), 20) if isinstance(max_iteration, int) else 5,
            tools=tuple(tools),
        ),
        warnings,
    )


def _advanced(config: Mapping[str, Any]) -> tuple[tuple[PromptMessageSpec, ...], str]:
    chat = config.get("chat_prompt_config") or {}
    messages: list[PromptMessageSpec] = []
    for item in (chat.get("prompt") if isinstance(chat, Mapping) else None) or []:
        if isinstance(item, Mapping):
            role = _str(item.get("role")) or "user"
            if role not in ("system", "user", "assistant"):
                raise DslError(f"chat_prompt_config role {role!r} is not supported")
            messages.append(PromptMessageSpec(role=role, text=_str(item.get("text")))) # type: ignore[arg-type]
    completion = config.get("completion_prompt_config") or {}
    prompt = completion.get("prompt") if isinstance(completion, Mapping) else None
    text = _str(prompt.get("text")) if isinstance(prompt, Mapping) else ""
    return tuple(messages), text


def parse_model_config(config: Mapping[str, Any], *, mode: str) -> tuple[AppSpec, list[str]]:
    """Read a ``model_config`` mapping.

    Returns:
        The spec and the warnings of an import (features accepted but not honoured).

    Raises:
        DslError: the config cannot be honoured; the message names the feature.
    """
    if mode not in ("chat", "agent-chat", "completion"):
        raise DslError(f"mode {mode!r} has no model_config")
    warnings: list[str] = []
    model = config.get("model")
    if not isinstance(model, Mapping) or not model.get("name"):
        raise DslError("model_config.model must give a provider and a name")
    model_mode = _str(model.get("mode")) or "chat"
    params = model.get("completion_params")
    model_spec = ModelSpec(
        provider=check_name(_str(model.get("provider")), "model_config.model.provider"),
        name=check_name(_str(model.get("name")), "model_config.model.name"),
        mode="completion" if model_mode == "completion" else "chat",
        completion_params=dict(params) if isinstance(params, Mapping) else {},
    )
    external = [
        t for t in (config.get("external_data_tools") or []) if isinstance(t, Mapping) and t.get("enabled", True)
    ]
    if external:
        names = ", ".join(_str(t.get("variable") or t.get("type")) for t in external)
        raise DslError(f"external_data_tools ({names}) are not supported by opstrail")
    form, form_warnings = _form(config.get("user_input_form"))
    warnings += form_warnings
    datasets, dataset_warnings = _datasets(config.get("dataset_configs"))
    warnings += dataset_warnings
    agent, agent_warnings = _agent(config.get("agent_mode"), mode)
    warnings += agent_warnings
    if mode == "agent-chat" and not agent.enabled:
        warnings.append("agent_mode is disabled; the agent answers without tools")
    if _enabled(config.get("annotation_reply")):
        warnings.append("annotation_reply is not supported; answers never come from annotations")
    for feature in ("speech_to_text", "text_to_speech", "file_upload"):
        if _enabled(config.get(feature)):
            warnings.append(f"{feature} is not supported; it is ignored")
    if mode == "completion" and _enabled(config.get("more_like_this")):
        warnings.append("more_like_this is not supported; it is ignored")
    prompt_type = _str(config.get("prompt_type")) or "simple"
    chat_prompt, completion_prompt = _advanced(config) if prompt_type == "advanced" else ((), "")
    suggested = config.get("suggested_questions") or []
    return (
        AppSpec(
            mode=mode,
            model=model_spec,
            pre_prompt=_str(config.get("pre_prompt")),
            prompt_type=prompt_type,
            advanced_chat_prompt=chat_prompt,
            advanced_completion_prompt=completion_prompt,
            user_input_form=form,
            opening_statement=_str(config.get("opening_statement")),
            suggested_questions=tuple(str(q) for q in suggested) if isinstance(suggested, list) else (),
            suggested_questions_after_answer=mode != "completion"
            and _enabled(config.get("suggested_questions_after_answer")),
            moderation=_moderation(config.get("sensitive_word_avoidance")),
            datasets=datasets,
            dataset_query_variable=_str(config.get("dataset_query_variable")),
            agent=agent,
            retriever_resource=_enabled(config.get("retriever_resource")),
        ),
        warnings,
    )


def field_names(spec: AppSpec) -> Sequence[str]:
    """Variable names of the form, in order."""
    return [f.variable for f in spec.user_input_form]

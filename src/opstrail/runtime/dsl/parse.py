"""Top-level parsing of a Dify app DSL document (YAML).

This module only splits the document into its parts and checks the top level; the
``model_config`` of chat, agent-chat and completion apps is read by
``opstrail.runtime.dsl.model_config`` and the ``workflow`` graph of workflow and chatflow apps
by ``opstrail.runtime.dsl.graph``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from opstrail.errors import DslError

MODES: Final = ("chat", "agent-chat", "completion", "advanced-chat", "workflow")
MODEL_CONFIG_MODES: Final = ("chat", "agent-chat", "completion")
WORKFLOW_MODES: Final = ("advanced-chat", "workflow")
MAX_DSL_BYTES: Final = 10 * 1024 * 1024
# Names and ids a document gives (app name, model, node ids, variables, datasets) are stored
# in columns of this many characters.
MAX_NAME_CHARS: Final = 255
# libyaml's loader is about 10x faster than the pure-Python one; same safe subset of YAML.
_SAFE_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class AppMeta:
    """The ``app`` block."""

    name: str
    mode: str
    description: str = ""
    icon: str | None = None
    icon_background: str | None = None


@dataclass(frozen=True, slots=True)
class AppDocument:
    """A parsed DSL document, before mode-specific checks.

    ``model_config`` or ``workflow`` holds the raw mapping of the part the mode uses.
    """

    app: AppMeta
    version: str
    dependencies: tuple[Mapping[str, Any], ...]
    model_config: Mapping[str, Any] | None
    workflow: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)


def parse_document(yaml_content: str) -> AppDocument:
    """Parse YAML text into an ``AppDocument``.

    Raises:
        DslError: the text is not YAML, not a mapping, has no valid ``app.mode``, or lacks
            the part its mode needs; the message names what is wrong.
    """
    if len(yaml_content.encode("utf-8", errors="replace")) > MAX_DSL_BYTES:
        raise DslError(f"the DSL document is larger than {MAX_DSL_BYTES // (1024 * 1024)} MB")
    try:
        data = yaml.load(yaml_content, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise DslError(f"the DSL document is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise DslError("the DSL document must be a YAML mapping with an 'app' key")
    problem = _unstorable(data)
    if problem is not None:
        raise DslError(problem)
    app = data.get("app")
    if not isinstance(app, dict):
        raise DslError("the DSL document has no 'app' mapping")
    mode = app.get("mode")
    if mode not in MODES:
        raise DslError(f"app.mode {mode!r} is not one of {', '.join(MODES)}")
    name = app.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DslError("app.name must be a non-empty string")
    check_name(name.strip(), "app.name")
    version = data.get("version", "0.1.0")
    if not isinstance(version, str):
        raise DslError("version must be a string such as '0.1.5'")
    kind = data.get("kind", "app")
    if kind != "app":
        raise DslError(f"kind {kind!r} is not supported; only 'app' documents can be imported")
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise DslError("dependencies must be a list")
    model_config = data.get("model_config")
    workflow = data.get("workflow")
    if mode in MODEL_CONFIG_MODES and not isinstance(model_config, dict):
        raise DslError(f"a {mode} app needs a 'model_config' mapping")
    if mode in WORKFLOW_MODES and not isinstance(workflow, dict):
        raise DslError(f"a {mode} app needs a 'workflow' mapping (missing workflow data)")
    return AppDocument(
        app=AppMeta(
            name=name.strip(),
            mode=mode,
            description=str(app.get("description") or ""),
            icon=app.get("icon"),
            icon_background=app.get("icon_background"),
        ),
        version=version,
        dependencies=tuple(d for d in dependencies if isinstance(d, dict)),
        model_config=model_config if mode in MODEL_CONFIG_MODES else None,
        workflow=workflow if mode in WORKFLOW_MODES else None,
        raw=data,
    )


def check_name(value: str, where: str) -> str:
    """``value`` when it fits a stored name or id (``MAX_NAME_CHARS``).

    Raises:
        DslError: the value is longer; the message names ``where`` it is.
    """
    if len(value) > MAX_NAME_CHARS:
        raise DslError(f"{where} is {len(value)} characters long; at most {MAX_NAME_CHARS} "
                       "are allowed")
    return value


def _unstorable(data: object) -> str | None:
    """Why a loaded document cannot be stored or traced (``None``: it can), naming the place:
    a NUL character (YAML's ``"\\0"``) or a non-finite number (``.nan``, ``.inf``), which
    PostgreSQL text and JSON columns and JSON itself refuse.

    Containers shared through YAML aliases are visited once, so an alias bomb costs no more
    than its distinct nodes.
    """
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return f"{where}: the DSL document must not contain NUL (\\0) characters"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{where}: {value} is not a finite number"
        if isinstance(value, (dict, list)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    return (f"{where}.{key!r}".lstrip(".") + ": the DSL document must not "
                            "contain NUL (\\0) characters")
                stack.append((item, f"{where}.{key}".lstrip(".") if isinstance(value, dict)
                              else f"{where}[{key}]"))
    return None

"""Top-level parsing of a Dify app DSL document (YAML).

This module only splits the document into its parts and checks the top level; the
``model_config`` of chat, agent-chat and completion apps is read by
``opstrail.runtime.dsl.model_config`` and the ``workflow`` graph of workflow and chatflow apps
by ``opstrail.runtime.dsl.graph``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from opstrail.errors import DslError

MODES: Final = ("chat", "agent-chat", "completion", "advanced-chat", "workflow")
MODEL_CONFIG_MODES: Final = ("chat", "agent-chat", "completion")
WORKFLOW_MODES: Final = ("advanced-chat", "workflow")
MAX_DSL_BYTES: Final = 10 * 1024 * 1024
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
    app = data.get("app")
    if not isinstance(app, dict):
        raise DslError("the DSL document has no 'app' mapping")
    mode = app.get("mode")
    if mode not in MODES:
        raise DslError(f"app.mode {mode!r} is not one of {', '.join(MODES)}")
    name = app.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DslError("app.name must be a non-empty string")
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

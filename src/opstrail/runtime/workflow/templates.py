"""Text templates: Dify's ``{{#node.var#}}`` references and sandboxed Jinja2."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from opstrail.errors import RuntimeFailure
from opstrail.runtime.dsl.graph import TEMPLATE_PATTERN
from opstrail.runtime.workflow.variables import VariablePool, to_text

MAX_TEMPLATE_OUTPUT: Final = 400_000


def render_references(
    text: str, pool: VariablePool, *, special: Mapping[str, str] | None = None
) -> str:
    """Replace every ``{{#a.b#}}`` in ``text`` by the value it names.

    ``special`` fills one-word markers such as ``{{#context#}}`` of LLM prompts.
    """
    if special:
        for key, value in special.items():
            text = text.replace("{{#" + key + "#}}", value)
    if "{{#" not in text:
        return text

    def replace(match: Any) -> str:
        return to_text(pool.get(match.group(1).split(".")))

    return TEMPLATE_PATTERN.sub(replace, text)


def make_jinja_environment() -> SandboxedEnvironment:
    """A sandboxed Jinja2 environment: no attribute access to internals, no imports."""
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


def render_jinja(
    environment: SandboxedEnvironment,
    template: str,
    variables: Mapping[str, Any],
    cache: dict[str, Template] | None = None,
) -> str:
    """Render a Jinja2 template over ``variables`` in the sandbox.

    ``cache`` (one per run) keeps compiled templates, so an iteration compiles its body's
    template once.

    Raises:
        RuntimeFailure: the template is invalid, unsafe, or renders more than the cap.
    """
    try:
        compiled = cache.get(template) if cache is not None else None
        if compiled is None:
            compiled = environment.from_string(template)
            if cache is not None:
                cache[template] = compiled
        rendered = compiled.render(**dict(variables))
    except TemplateError as exc:
        raise RuntimeFailure(f"template error: {exc}", code="template_error") from exc
    if len(rendered) > MAX_TEMPLATE_OUTPUT:
        raise RuntimeFailure(
            f"the template output is longer than {MAX_TEMPLATE_OUTPUT} characters",
            code="template_error",
        )
    return rendered


__all__ = ["StrictUndefined", "make_jinja_environment", "render_jinja", "render_references"]

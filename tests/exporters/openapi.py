"""Validate legacy events and score bodies against Langfuse's OpenAPI file (tests/fixtures).

Two adjustments to the generated file, both about how Fern writes unions:

* Fern's undiscriminated unions (``IngestionUsage``, ``UsageDetails``, ``MapValue``,
  ``CreateScoreValue``) mean "the first member that fits". Written as JSON Schema ``oneOf`` they
  refuse any value fitting two members: every ``Usage`` object also fits ``OpenAIUsage`` (all
  optional fields), and every integer is also a number. Those become ``anyOf`` here.
* ``IngestionEvent`` stays a strict ``oneOf``: its members are told apart by the ``type`` enum.

Bodies are also checked for keys the schema does not name: Langfuse strips unknown keys without
an error (contract §4.3), so such a key would be a field lost on the wire.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "langfuse-openapi.yml"

_BODY_SCHEMA_OF_EVENT = {
    "trace-create": "TraceBody",
    "span-create": "CreateSpanBody",
    "generation-create": "CreateGenerationBody",
    "event-create": "CreateEventBody",
    "score-create": "ScoreBody",
}


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def _relax_unions(node: Any, *, inside: str = "") -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "oneOf" and inside != "IngestionEvent":
                out["anyOf"] = _relax_unions(value, inside=inside)
            else:
                out[key] = _relax_unions(value, inside=inside)
        return out
    if isinstance(node, list):
        return [_relax_unions(item, inside=inside) for item in node]
    return node


@cache
def _components() -> dict[str, Any]:
    schemas = copy.deepcopy(_spec()["components"]["schemas"])
    relaxed = {name: _relax_unions(schema, inside=name) for name, schema in schemas.items()}
    return {"schemas": relaxed}


def _validator(schema_name: str) -> OAS30Validator:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    return OAS30Validator(root, format_checker=oas30_format_checker)


@cache
def _cached_validator(schema_name: str) -> OAS30Validator:
    return _validator(schema_name)


def known_properties(schema_name: str) -> frozenset[str]:
    """Every property name a schema allows, following ``allOf`` and ``$ref``."""
    schemas = _spec()["components"]["schemas"]
    names: set[str] = set()

    def walk(schema: Mapping[str, Any]) -> None:
        if "$ref" in schema:
            walk(schemas[schema["$ref"].rsplit("/", 1)[-1]])
            return
        names.update(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            walk(part)

    walk(schemas[schema_name])
    return frozenset(names)


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise if ``event`` is not a valid ``IngestionEvent`` or its body has unknown keys."""
    _cached_validator("IngestionEvent").validate(event)
    body_schema = _BODY_SCHEMA_OF_EVENT[event["type"]]
    unknown = set(event["body"]) - known_properties(body_schema)
    assert not unknown, f"{event['type']} body has keys Langfuse would strip: {sorted(unknown)}"


def validate_schema(instance: Any, schema_name: str) -> None:
    """Raise if ``instance`` does not match ``components.schemas[schema_name]`` or has keys
    the schema does not name."""
    _cached_validator(schema_name).validate(instance)
    if isinstance(instance, Mapping):
        unknown = set(instance) - known_properties(schema_name)
        assert not unknown, f"{schema_name} has keys Langfuse would strip: {sorted(unknown)}"

"""Property-based run (schemathesis) of the service API (``/v1``) and of the console API
outside tracing (apps, imports, API keys, datasets, preview and debug runs): no request,
schema-valid or not, makes the server answer 5xx, every refusal is JSON ``{"code",
"message"}``, and what was stored before the run is still there, unchanged.

One chat, completion, workflow and chatflow app are set up first, each with a stored run, so
generated requests can target real apps, messages, conversations and workflow runs (drawn per
example) as well as generated ids. Settings are loopback-only and the model is the offline
one: nothing leaves the machine. The console tracing routes have their own run
(``test_console_schemathesis.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from api.fuzz_apps import (
    CONSOLE,
    EXAMPLES,
    FUZZ_USER,
    WORKFLOW_YAML,
    Fixture,
    import_app,
    set_up_apps,
    snapshot,
)
from opstrail.api.app import create_app
from opstrail.settings import Settings

TRACING_PATHS = r"^/console/api/apps/\{app_id\}/trace"
COVERED_PATHS = r"^/(v1|console/api)/"
EXAMPLES_PER_OPERATION = 15


def _check(status: int, content_type: str, text: str) -> None:
    """A 5xx is a server fault; a 4xx must be JSON ``{"code", "message"}``."""
    assert status < 500, f"{status}: {text[:500]}"
    if status >= 400:
        assert content_type.startswith("application/json"), f"{status} is not JSON: {text[:300]}"
        body = json.loads(text)
        assert isinstance(body, dict), body
        assert isinstance(body.get("code"), str) and body["code"], body
        assert isinstance(body.get("message"), str) and body["message"], body


def _check_answer(response: schemathesis.Response) -> None:
    """``_check`` of a schemathesis answer (each header is a list of values there)."""
    _check(response.status_code, (response.headers.get("content-type") or [""])[0],
           response.text)


def _check_http(answer: Any) -> None:
    """``_check`` of a TestClient answer (httpx-shaped)."""
    _check(answer.status_code, answer.headers.get("content-type", ""), answer.text)


# The app modes an operation serves; other modes are drawn too, less often.
_MODES_OF = {
    "/v1/chat-messages": ("chat", "advanced-chat"),
    "/v1/completion-messages": ("completion",),
    "/v1/workflows": ("workflow",),
    "/v1/parameters": ("chat", "completion"),
    "/console/api/apps/{app_id}/chat-messages": ("chat",),
    "/console/api/apps/{app_id}/completion-messages": ("completion",),
    "/console/api/apps/{app_id}/workflows": ("workflow",),
    "/console/api/apps/{app_id}/advanced-chat": ("advanced-chat",),
}
# Text a store or a template may choke on: NUL (PostgreSQL refuses it), zero-width and
# right-to-left marks, astral and CJK characters, template syntax, escapes, long text.
ODD_TEXT = ("\x00", "a\x00b", "\u200b\ufeff", "日本語の質問", "emoji \U0001f600 \ud7ff\ue000",
            "\u202eright-to-left", " ", "\r\n\t", "{{#sys.query#}}", "{{ 7 * 7 }}", "\\u0000",
            "%00", "' OR 1=1 --", "<script>x</script>", "a" * 5000)
# Values of the wrong type or shape for an input of a form.
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80), st.sampled_from(ODD_TEXT),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2),
)
GOOD_INPUTS: dict[str, dict[str, Any]] = {
    "chat": {"tone": "formal"},
    "completion": {"A": "MySQL", "default_input": "rows of users"},
    "workflow": {"topic": "tea", "tone": "calm", "count": 2},
    "advanced-chat": {},
}
QUERIES = ("How many holidays?", *ODD_TEXT)
INPUT_NAMES = ("topic", "tone", "count", "notes", "A", "default_input", "tone", "query")


def _app_mode(path: str, data: st.DataObject, fx: Fixture) -> str:
    preferred = next((modes for prefix, modes in _MODES_OF.items() if path.startswith(prefix)),
                     ())
    return data.draw(st.sampled_from([*preferred, *preferred, *preferred, *sorted(fx.app_ids)]),
                     label="app")


def _aim(case: schemathesis.Case, data: st.DataObject, fx: Fixture, client: TestClient) -> str:
    """Point a generated case at real rows where the draw says so; returns the app mode used
    for the service key."""
    mode = _app_mode(case.operation.path, data, fx)
    real = data.draw(st.booleans(), label="real ids")
    if not real:
        return mode
    console = case.operation.path.startswith("/console/")
    rows = (fx.console_rows if console else fx.api_rows).get(mode, {})

    def pick(kind: str) -> str | None:
        # The app's own row, or (less often) another app's: both must be handled.
        pool = rows.get(kind) or fx.all(kind)
        pool = [*pool, *pool, *fx.all(kind)]
        return data.draw(st.sampled_from(pool), label=kind) if pool else None

    if case.path_parameters:
        for name in list(case.path_parameters):
            value = fx.app_ids[mode] if name == "app_id" else pick(name)
            if data.draw(st.integers(0, 5), label="odd id") == 0:
                value = data.draw(st.sampled_from(ODD_TEXT), label=f"odd {name}")
            if value is not None:
                case.path_parameters[name] = value
        if case.method.upper() == "DELETE" and "app_id" in case.path_parameters:
            # Deleting a real app would take the fixture with it: delete a fresh one instead.
            case.path_parameters["app_id"] = import_app(client, WORKFLOW_YAML)[0]
    if isinstance(case.query, dict):
        if "user" in case.query:
            case.query["user"] = data.draw(st.sampled_from([FUZZ_USER] * 4 + list(ODD_TEXT)),
                                           label="query user")
        if "conversation_id" in case.query:
            case.query["conversation_id"] = pick("conversation_id")
    if isinstance(case.body, dict):
        if not console:
            case.body["user"] = data.draw(st.sampled_from([FUZZ_USER] * 4 + list(ODD_TEXT)),
                                          label="user")
        for name in ("name", "content", "text"):
            if isinstance(case.body.get(name), str) and data.draw(st.booleans(), label=name):
                case.body[name] = data.draw(st.sampled_from(ODD_TEXT), label=f"odd {name}")
        if "message_id" in case.body:
            case.body["message_id"] = pick("message_id")
        if "conversation_id" in case.body:
            case.body["conversation_id"] = data.draw(
                st.sampled_from([pick("conversation_id"), None]), label="new conversation")
        if "inputs" in case.body:
            # A good form with one value changed, or anything at all.
            good = dict(GOOD_INPUTS[mode])
            if data.draw(st.booleans(), label="mutate inputs"):
                good[data.draw(st.sampled_from(INPUT_NAMES), label="input")] = data.draw(
                    ODD_VALUES, label="value")
            case.body["inputs"] = good
        if "query" in case.body and data.draw(st.booleans(), label="real query"):
            case.body["query"] = data.draw(st.sampled_from(QUERIES), label="query")
    return mode


@pytest.fixture(name="fuzzed", scope="module", params=["sqlite", "postgres"])
def _fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[FastAPI, TestClient, Fixture]]:
    # PostgreSQL refuses what SQLite keeps (NUL characters, NaN in JSON, over-long values),
    # so the same requests run against both.
    database = {"database_url": request.getfixturevalue("postgres_url")} if (
        request.param == "postgres") else {}
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        console_token="test-console-token",
        secret_key=None,
        loopback_only_hosts=True,
        model_fallback="offline",
        embedded_dispatcher=False,
        log_json=False,
        **database,
    )
    app = create_app(settings)
    with TestClient(app, headers=CONSOLE) as client:
        yield app, client, set_up_apps(client)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_service_and_console_api_never_answer_5xx_when_fuzzed(
    fuzzed: tuple[FastAPI, TestClient, Fixture], mode: GenerationMode
) -> None:
    """Generated requests, schema-valid or not, on real or generated ids, never get a 5xx or a
    non-JSON refusal from any /v1 or non-tracing console route, and lose nothing stored."""
    app, client, fx = fuzzed
    assert app.state.settings.loopback_only_hosts
    before = snapshot(app, fx)
    schema = (
        schemathesis.openapi.from_asgi("/openapi.json", app)
        .include(path_regex=COVERED_PATHS)
        .exclude(path_regex=TRACING_PATHS)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert any(p.startswith("/v1/") for p in paths) and "/console/api/apps/imports" in paths
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case, data: st.DataObject) -> None:
            app_mode = _aim(case, data, fx, client)
            service = case.operation.path.startswith("/v1/")
            headers = {"Authorization": f"Bearer {fx.keys[app_mode]}"} if service else CONSOLE
            response = case.call(headers=headers)
            _check_answer(response)

        try:
            run()
        except AssertionError as exc:  # collect all operations' failures, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:1500])
    assert not failures, "\n\n".join(failures)
    assert snapshot(app, fx) == before


# What a mutated DSL value may become: wrong types, empty and extreme values.
ODD_DSL_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["", " ", "x" * 300]),
    st.sampled_from(ODD_TEXT[2:]), st.just([]), st.just({}), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["id", "type", "name", "value"]), st.integers(), max_size=2),
)
DSL_SOURCES = ("handbook_chat.yml", "clock_calculator_agent.yml", "memory_chatflow.yml",
               "ticket_triage_workflow.yml")
DSL_EXAMPLES = 40


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a loaded document (the document itself excluded)."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def test_imported_dsl_with_a_mutated_value_never_gets_a_5xx(
    fuzzed: tuple[FastAPI, TestClient, Fixture]
) -> None:
    """An example DSL with one value replaced by a wrong type or an extreme value is imported
    or refused with a JSON 4xx; when imported, reading and running it never answers 5xx."""
    app, client, fx = fuzzed
    documents = [yaml.safe_load((EXAMPLES / name).read_text()) for name in DSL_SOURCES]
    before = snapshot(app, fx)

    @given(data=st.data())
    @hypothesis_settings(max_examples=DSL_EXAMPLES, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(HealthCheck))
    def run(data: st.DataObject) -> None:
        document = data.draw(st.sampled_from(documents), label="document")
        path = data.draw(st.sampled_from(sorted(_paths(document), key=repr)), label="path")
        mutated = _replace(document, path, data.draw(ODD_DSL_VALUES, label="value"))
        imported = client.post("/console/api/apps/imports", json={
            "mode": "yaml-content", "yaml_content": yaml.safe_dump(mutated, allow_unicode=True)})
        _check_http(imported)
        if imported.status_code != 200:
            return
        app_id = imported.json()["app_id"]
        key = client.post(f"/console/api/apps/{app_id}/api-keys").json()["token"]
        headers = {"Authorization": f"Bearer {key}"}
        mode = imported.json()["app_mode"]
        _check_http(client.get(f"/console/api/apps/{app_id}/preview/parameters"))
        _check_http(client.get("/v1/parameters", headers=headers))
        path_of = {"workflow": "/v1/workflows/run", "completion": "/v1/completion-messages"}
        inputs = {"tickets": "one\ntwo", "priority": "high", "tone": "formal"}
        answer = client.post(path_of.get(mode, "/v1/chat-messages"), headers=headers, json={
            "inputs": inputs, "query": "What is 12 * 3?", "user": FUZZ_USER,
            "response_mode": data.draw(st.sampled_from(["blocking", "streaming"]), label="rm")})
        _check_http(answer)

    run()
    assert snapshot(app, fx) == before


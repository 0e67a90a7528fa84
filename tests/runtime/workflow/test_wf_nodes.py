"""Node types one by one: conditions, http-request (loopback server and SSRF guard), list
operator, document extractor, assigner, aggregator groups, LLM prompts, parameter extractor
and the sample workflows on the offline model."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opstrail.netguard import check_request_target
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry
from opstrail.runtime.nodes.assigner import apply_operation
from opstrail.runtime.nodes.base import Turn
from opstrail.runtime.workflow.conditions import compare
from opstrail.runtime.workflow.variables import MISSING
from opstrail.tracing.info import NodeStatus, WorkflowRunStatus

from .fakes import edge, node, run, start, workflow

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dsl"


@pytest.mark.parametrize(("operator", "actual", "expected", "result"), [
    ("contains", "refund please", "refund", True),
    ("contains", ["a", "b"], "b", True),
    ("contains", None, "x", False),
    ("not contains", "abc", "z", True),
    ("not contains", None, "z", True),
    ("start with", "hello", "he", True),
    ("end with", "hello", "lo", True),
    ("is", "x", "x", True),
    ("is", 5, "5", True),
    ("is not", "x", "y", True),
    ("empty", "", None, True),
    ("empty", [], None, True),
    ("empty", MISSING, None, True),
    ("not empty", "a", None, True),
    ("in", "b", ["a", "b"], True),
    ("in", "c", "a,b", False),
    ("not in", "c", ["a", "b"], True),
    ("all of", ["a", "b", "c"], ["a", "c"], True),
    ("all of", ["a"], ["a", "c"], False),
    ("=", 3, "3", True),
    ("=", "3.0", 3, True),
    ("≠", 3, "4", True),
    (">", 5, "4", True),
    ("<", 5, "4", False),
    ("≥", 4, "4", True),
    ("≤", 3, "4", True),
    (">", None, "4", False),
    ("null", None, None, True),
    ("not null", 0, None, True),
    ("exists", 0, None, True),
    ("exists", MISSING, None, False),
    ("not exists", MISSING, None, True),
    ("is", True, "true", True),
])
def test_compare_follows_difys_operators(operator: str, actual: Any, expected: Any,
                                         result: bool) -> None:
    """Each comparison operator of Dify's condition processor, incl. missing values."""
    assert compare(operator, actual, expected) is result


@pytest.fixture(name="echo_server")
def _echo_server() -> Iterator[str]:
    """A loopback HTTP server echoing method, path, headers and body as JSON."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if self.path.startswith("/redirect-out"):
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.end_headers()
                return
            payload = json.dumps({"method": self.command, "path": self.path, "body": body,
                                  "auth": self.headers.get("Authorization"),
                                  "trace": self.headers.get("X-Trace")}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _guard(url: str) -> str:
    return check_request_target(url, refuse_private=False, loopback_only=True)


def _http_workflow(url: str, **extra: Any) -> dict[str, Any]:
    return workflow(
        [start("q"),
         node("call", "http-request", method="post", url=url,
              headers="X-Trace:{{#start.q#}}", params="k:v",
              authorization={"type": "api-key", "config": {"type": "bearer",
                                                           "api_key": "s3cret"}},
              body={"type": "json", "data": [{"id": "1", "key": "", "type": "text",
                                              "value": '{"q": "{{#start.q#}}"}'}]},
              timeout={"max_connect_timeout": 0, "max_read_timeout": 5,
                       "max_write_timeout": 0}, **extra),
         node("end", "end", outputs=[{"variable": "status", "value_selector": ["call",
                                                                               "status_code"]},
                                     {"variable": "body", "value_selector": ["call", "body"]}])],
        [edge("start", "call"), edge("call", "end")])


def test_http_request_calls_a_loopback_server_through_the_guard(echo_server: str) -> None:
    """Method, params, headers, bearer auth and JSON body reach the server; the answer is
    the node's output; the recorded inputs hide the credential."""
    outcome, _events, _engine = run(_http_workflow(f"{echo_server}/items"),
                                    inputs={"q": "boots"}, check_url=_guard)
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    assert outcome.outputs["status"] == 201
    echoed = json.loads(outcome.outputs["body"])
    assert echoed == {"method": "POST", "path": "/items?k=v", "body": '{"q": "boots"}',
                      "auth": "Bearer s3cret", "trace": "boots"}
    call = next(e for e in outcome.node_executions if e.node_id == "call")
    assert call.inputs["headers"]["Authorization"] == "***"


def test_http_request_refuses_metadata_targets_and_redirects_there(echo_server: str) -> None:
    """The SSRF guard fails the node for a metadata address, also behind a redirect."""
    outcome, _events, _engine = run(_http_workflow("http://169.254.169.254/latest"),
                                    inputs={"q": "x"}, check_url=_guard)
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "refused" in (outcome.error or "")
    outcome, _events, _engine = run(_http_workflow(f"{echo_server}/redirect-out"),
                                    inputs={"q": "x"}, check_url=_guard)
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "redirect to http://169.254.169.254/latest/meta-data refused" in (outcome.error or "")


def test_list_operator_filters_sorts_and_limits() -> None:
    """Filter by a key, order descending, keep the first two."""
    wf = workflow(
        [node("start", "start", variables=[]),
         node("data", "code", variables=[], outputs={"xs": {"type": "array[object]"}},
              code="def main() -> dict:\n    return {'xs': [{'n': 1, 't': 'a'}, "
                   "{'n': 5, 't': 'b'}, {'n': 3, 't': 'a'}, {'n': 4, 't': 'a'}]}\n"),
         node("ops", "list-operator", variable=["data", "xs"],
              filter_by={"enabled": True, "conditions": [
                  {"key": "t", "comparison_operator": "is", "value": "a"}]},
              order_by={"enabled": True, "key": "n", "value": "desc"},
              limit={"enabled": True, "size": 2}),
         node("end", "end", outputs=[{"variable": "r", "value_selector": ["ops", "result"]},
                                     {"variable": "f", "value_selector": ["ops",
                                                                          "first_record"]}])],
        [edge("start", "data"), edge("data", "ops"), edge("ops", "end")])
    outcome, _events, _engine = run(wf)
    assert outcome.outputs == {"r": [{"n": 4, "t": "a"}, {"n": 3, "t": "a"}],
                               "f": {"n": 4, "t": "a"}}


def _pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF whose content stream shows ``text``."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


def test_document_extractor_reads_text_markdown_and_pdf() -> None:
    """Files in sys.files: a markdown file and a PDF give their text, in order."""
    files = [
        {"filename": "notes.md", "data": base64.b64encode(b"# Title\nbody").decode()},
        {"filename": "report.pdf", "mime_type": "application/pdf",
         "data": base64.b64encode(_pdf_with_text("Quarterly numbers")).decode()},
    ]
    wf = workflow(
        [start("q", required=False),
         node("doc", "document-extractor", variable_selector=["sys", "files"],
              is_array_file=True),
         node("end", "end", outputs=[{"variable": "t", "value_selector": ["doc", "text"]}])],
        [edge("start", "doc"), edge("doc", "end")])
    outcome, _events, _engine = run(wf, system={"files": files})
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    texts = outcome.outputs["t"]
    assert texts[0] == "# Title\nbody" and "Quarterly numbers" in texts[1]


def test_document_extractor_fails_on_an_unsupported_file_with_its_own_error() -> None:
    """An unknown file type fails the node, naming the file."""
    wf = workflow(
        [start("q", required=False),
         node("doc", "document-extractor", variable_selector=["sys", "files"]),
         node("end", "end", outputs=[{"variable": "t", "value_selector": ["doc", "text"]}])],
        [edge("start", "doc"), edge("doc", "end")])
    files = {"filename": "x.exe", "data": base64.b64encode(b"MZ").decode()}
    outcome, _events, _engine = run(wf, system={"files": files})
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "'x.exe': extension 'exe' is not supported" in (outcome.error or "")


@pytest.mark.parametrize(("operation", "current", "value", "expected"), [
    ("over-write", "a", "b", "b"), ("clear", [1], None, []), ("append", [1], 2, [1, 2]),
    ("extend", [1], [2, 3], [1, 2, 3]), ("+=", 1, 2, 3), ("-=", 5, 2, 3), ("*=", 2, 3, 6),
    ("/=", 6, 3, 2), ("remove-first", [1, 2], None, [2]), ("remove-last", [1, 2], None, [1]),
])
def test_assigner_operations(operation: str, current: Any, value: Any, expected: Any) -> None:
    """Every v2 assigner operation."""
    assert apply_operation(operation, current, value) == expected


def test_assigner_v1_and_aggregator_groups() -> None:
    """v1 assigner overwrites a conversation variable; aggregator groups give one output
    per group."""
    wf = workflow(
        [start("q"),
         node("set", "assigner", assigned_variable_selector=["conversation", "topic"],
              input_variable_selector=["start", "q"], write_mode="over-write"),
         node("agg", "variable-aggregator", advanced_settings={"group_enabled": True, "groups": [
             {"group_name": "g1", "output_type": "string",
              "variables": [["conversation", "topic"]]}]}),
         node("a", "answer", answer="{{#agg.g1.output#}}")],
        [edge("start", "set"), edge("set", "agg"), edge("agg", "a")],
        conversation_variables=[{"name": "topic", "value": "", "value_type": "string"}])
    outcome, _events, engine = run(wf, mode="advanced-chat", inputs={"q": "shoes"},
                                   system={"query": "hi"})
    assert outcome.answer == "shoes"
    assert engine.pool.namespace("conversation") == {"topic": "shoes"}


def test_llm_renders_jinja2_and_context_and_keeps_the_memory_window() -> None:
    """A jinja2 message, the retrieval context and the last N turns make the prompt."""
    wf = workflow(
        [start("q"),
         node("kr", "knowledge-retrieval", dataset_ids=["ds-1", "gone"],
              query_variable_selector=["start", "q"], retrieval_mode="multiple",
              multiple_retrieval_config={"top_k": 2}),
         node("llm", "llm", model={"provider": "p", "name": "m", "mode": "chat"},
              context={"enabled": True, "variable_selector": ["kr", "result"]},
              variables=[{"variable": "q", "value_selector": ["start", "q"]}],
              prompt_template=[
                  {"role": "system", "text": "Context: {{#context#}}"},
                  {"role": "user", "edition_type": "jinja2", "jinja2_text": "Q={{ q|upper }}",
                   "text": ""}],
              memory={"window": {"enabled": True, "size": 1}}),
         node("a", "answer", answer="{{#llm.text#}}")],
        [edge("start", "kr"), edge("kr", "llm"), edge("llm", "a")])
    history = [Turn("old question", "old answer"), Turn("last question", "last answer")]
    outcome, _events, _engine = run(wf, mode="advanced-chat", inputs={"q": "boots"},
                                    system={"query": "boots?"}, history=history)
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    llm = next(e for e in outcome.node_executions if e.node_id == "llm")
    assert llm.process_data["prompts"] == [
        {"role": "system", "text": "Context: doc about boots"},
        {"role": "user", "text": "last question"},
        {"role": "assistant", "text": "last answer"},
        {"role": "user", "text": "Q=BOOTS"},
        {"role": "user", "text": "boots?"},
    ]
    kr = next(e for e in outcome.node_executions if e.node_id == "kr")
    assert len(kr.documents) == 1 and kr.documents[0].dataset_id == "ds-1"
    assert kr.process_data["warnings"] == ["dataset 'gone' not found"]


def test_parameter_extractor_gets_schema_valid_values_from_the_offline_model() -> None:
    """The offline model answers the extractor's JSON schema; each parameter is an output."""
    wf = workflow(
        [start("q"),
         node("pe", "parameter-extractor", query=["start", "q"], reasoning_mode="prompt",
              model={"provider": "opstrail", "name": "offline", "mode": "chat"},
              instruction="Extract.", parameters=[
                  {"name": "year", "type": "number", "description": "Year", "required": True},
                  {"name": "city", "type": "select", "options": ["Paris", "Rome"],
                   "required": True},
                  {"name": "tags", "type": "array[string]", "required": False}]),
         node("end", "end", outputs=[{"variable": "ok", "value_selector": ["pe",
                                                                           "__is_success"]},
                                     {"variable": "city", "value_selector": ["pe", "city"]},
                                     {"variable": "year", "value_selector": ["pe", "year"]}])],
        [edge("start", "pe"), edge("pe", "end")])
    models = ModelRegistry(ModelOptions())
    outcome, _events, _engine = run(wf, inputs={"q": "Born 1990 in Rome"}, models=models)
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    assert outcome.outputs["ok"] == 1
    assert outcome.outputs["city"] in ("Paris", "Rome")
    assert isinstance(outcome.outputs["year"], int | float)
    pe = next(e for e in outcome.node_executions if e.node_id == "pe")
    assert pe.model_provider == "opstrail" and pe.model_calls[0].total_tokens > 0


@pytest.mark.parametrize(("name", "inputs", "system", "status", "failed_node"), [
    ("workflow_audit_workpaper_kb_code.yml",
     {"project_name": "p", "project_event": "e", "audit_finding": "f"}, {},
     WorkflowRunStatus.SUCCEEDED, None),
    ("workflow_rich_article_rewrite_iteration.yml",
     {"url": "https://example.com", "clean_img": 1, "single_img": 1}, {},
     WorkflowRunStatus.FAILED, "1718967141318"),
    ("advanced_chat_admin_assistant_classifier_kb.yml", {"name": "Li"},
     {"query": "社保 question"}, WorkflowRunStatus.SUCCEEDED, None),
])
def test_samples_run_on_the_offline_model_to_the_end_or_their_failing_node(
        name: str, inputs: dict[str, Any], system: dict[str, Any], status: WorkflowRunStatus,
        failed_node: str | None) -> None:
    """Each sample runs with the offline model (fallback for its providers) to the end, or
    fails at the node that needs a service not available here, with that node's error."""
    document = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    models = ModelRegistry(ModelOptions(fallback="offline"))
    outcome, _events, _engine = run(document["workflow"], mode=document["app"]["mode"],
                                    inputs=inputs, system=system, models=models)
    assert outcome.status == status, outcome.error
    failed = [e for e in outcome.node_executions if e.status == NodeStatus.FAILED]
    if failed_node is None:
        assert failed == []
        assert outcome.node_executions[-1].node_type in ("end", "answer")
    else:
        assert [e.node_id for e in failed] == [failed_node]
        assert failed[0].error and failed[0].error in (outcome.error or "")
    for execution in outcome.node_executions:
        if execution.node_type in ("llm", "question-classifier", "parameter-extractor"):
            assert execution.model_calls and execution.model_calls[0].provider == "opstrail"

"""parse_graph: every workflow/advanced-chat sample imports; what cannot run is refused at
import naming the node; what may still run is a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from opstrail.errors import DslError
from opstrail.runtime.dsl.graph import normalise_selector, parse_graph

from .fakes import edge, node, start, workflow

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dsl"
GRAPH_FIXTURES = sorted(p for p in FIXTURES.glob("*.yml")
                        if p.name.startswith(("workflow_", "advanced_chat_")))


@pytest.mark.parametrize("path", GRAPH_FIXTURES, ids=lambda p: p.name)
def test_parse_graph_imports_every_sample(path: Path) -> None:
    """Each workflow and chatflow sample parses into a graph with its start node."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    graph, warnings = parse_graph(document["workflow"], mode=document["app"]["mode"])
    assert graph.nodes[graph.root_id].type == "start"
    assert len(graph.edges) == len(document["workflow"]["graph"]["edges"])
    assert all(isinstance(w, str) for w in warnings)


def test_parse_graph_warns_about_tools_and_datasets_it_cannot_resolve() -> None:
    """Workflow-as-tool nodes and unknown dataset ids are warnings naming the node."""
    document = yaml.safe_load((FIXTURES / "workflow_rich_article_rewrite_iteration.yml")
                              .read_text(encoding="utf-8"))
    _graph, warnings = parse_graph(document["workflow"], mode="workflow")
    assert len(warnings) == 3 and all("not available here" in w for w in warnings)
    assert "'1718967141318' (本地爬虫)" in warnings[0]
    document = yaml.safe_load((FIXTURES / "workflow_audit_workpaper_kb_code.yml")
                              .read_text(encoding="utf-8"))
    _graph, warnings = parse_graph(document["workflow"], mode="workflow", known_dataset_ids=())
    assert len(warnings) == 1 and "cannot be resolved" in warnings[0]


def _refusal(wf: dict[str, Any], mode: str = "workflow") -> str:
    with pytest.raises(DslError) as caught:
        parse_graph(wf, mode=mode)
    return caught.value.message


def test_parse_graph_refuses_a_cycle_naming_a_node() -> None:
    """A cycle through edges is refused (loops repeat through loop nodes only)."""
    message = _refusal(workflow(
        [start("q"), node("a", "template-transform", template="x", variables=[]),
         node("b", "template-transform", template="y", variables=[])],
        [edge("start", "a"), edge("a", "b"), edge("b", "a")]))
    assert "cycle" in message and ("'a'" in message or "'b'" in message)


def test_parse_graph_refuses_a_dangling_edge() -> None:
    """An edge to a node that does not exist is refused, naming it."""
    message = _refusal(workflow([start("q")], [edge("start", "ghost")]))
    assert "dangling" in message and "'ghost'" in message


@pytest.mark.parametrize(("selector", "problem"), [
    (["nowhere", "text"], "node 'nowhere' does not exist"),
    (["sys", "nothing"], "sys.nothing is not a system variable"),
    (["env", "API_KEY"], "environment variable 'API_KEY' is not declared"),
    (["start", "missing"], "the start node has no input 'missing'"),
])
def test_parse_graph_refuses_an_unknown_variable_selector(selector: list[str],
                                                          problem: str) -> None:
    """Selectors must name a node, a system, environment or declared input variable."""
    message = _refusal(workflow(
        [start("q"), node("e", "end", title="Done",
                          outputs=[{"variable": "x", "value_selector": selector}])],
        [edge("start", "e")]))
    assert "'e' (Done)" in message and problem in message


def test_parse_graph_refuses_an_unknown_template_reference() -> None:
    """``{{#node.var#}}`` references are checked like selectors."""
    message = _refusal(workflow(
        [start("q"), node("a", "answer", answer="{{#ghost.text#}}")],
        [edge("start", "a")]), mode="advanced-chat")
    assert "{{#ghost.text#}}" in message and "does not exist" in message


def test_parse_graph_accepts_both_system_selector_forms() -> None:
    """``[sys, query]`` and the older ``[<start-id>, sys.query]`` mean the same."""
    wf = workflow(
        [start("q"),
         node("kr", "knowledge-retrieval", dataset_ids=[], query_variable_selector=[
             "start", "sys.query"]),
         node("kr2", "knowledge-retrieval", dataset_ids=[], query_variable_selector=[
             "sys", "query"])],
        [edge("start", "kr"), edge("start", "kr2")])
    parse_graph(wf, mode="advanced-chat")
    assert normalise_selector(["start", "sys.query"]) == ("sys", "query")


@pytest.mark.parametrize(("node_type", "extra", "expected"), [
    ("agent", {}, "is an agent node; agent nodes (plugin agent strategies) are not supported"),
    ("knowledge-index", {}, "unsupported node type 'knowledge-index'"),
    ("code", {"code_language": "javascript", "code": "", "variables": []},
     "code in 'javascript' is not supported; only python3"),
])
def test_parse_graph_refuses_what_cannot_run_naming_the_node(
        node_type: str, extra: dict[str, Any], expected: str) -> None:
    """Agent nodes, unknown types and non-python code are refused by node and reason."""
    message = _refusal(workflow([start("q"), node("x1", node_type, title="Thing", **extra)],
                                [edge("start", "x1")]))
    assert "'x1' (Thing)" in message and expected in message


def test_parse_graph_refuses_answer_nodes_in_workflow_apps() -> None:
    """Answer nodes belong to chatflows."""
    message = _refusal(workflow([start("q"), node("a", "answer", answer="hi")],
                                [edge("start", "a")]))
    assert "answer nodes exist only in chatflow apps" in message


def test_parse_graph_reads_environment_and_conversation_variables() -> None:
    """Declared env and conversation variables may be referenced."""
    wf = workflow(
        [start("q"), node("a", "answer", answer="{{#env.BASE#}} {{#conversation.topic#}}")],
        [edge("start", "a")],
        environment_variables=[{"name": "BASE", "value": "https://x", "value_type": "string"}],
        conversation_variables=[{"name": "topic", "value": "", "value_type": "string"}],
    )
    graph, _ = parse_graph(wf, mode="advanced-chat")
    assert [v.name for v in graph.environment_variables] == ["BASE"]
    assert [v.name for v in graph.conversation_variables] == ["topic"]

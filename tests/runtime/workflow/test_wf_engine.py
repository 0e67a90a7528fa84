"""The graph engine: routing, parallel branches, iterations, loops, error strategies, retries,
stop and run timeout, and the completeness of every recorded node execution."""

from __future__ import annotations

import threading
from typing import Any

from opstrail.tracing.info import NodeStatus, WorkflowRunStatus

from .fakes import FakeModels, edge, node, run, sandbox, start, workflow


def _end(node_id: str, **outputs: list[str]) -> dict[str, Any]:
    return node(node_id, "end", outputs=[{"variable": k, "value_selector": v}
                                         for k, v in outputs.items()])


def _template(node_id: str, template: str, **variables: list[str]) -> dict[str, Any]:
    return node(node_id, "template-transform", template=template,
                variables=[{"variable": k, "value_selector": v} for k, v in variables.items()])


def _if_else() -> dict[str, Any]:
    return workflow(
        [
            start("text"),
            node("check", "if-else", cases=[
                {"case_id": "true", "logical_operator": "and", "conditions": [
                    {"variable_selector": ["start", "text"], "comparison_operator": "contains",
                     "value": "refund"}]},
                {"case_id": "elif-1", "logical_operator": "or", "conditions": [
                    {"variable_selector": ["start", "text"], "comparison_operator": "start with",
                     "value": "hi"},
                    {"variable_selector": ["start", "text"], "comparison_operator": "empty"}]},
            ]),
            _template("refund", "refund: {{ t }}", t=["start", "text"]),
            _template("greet", "hello: {{ t }}", t=["start", "text"]),
            _template("other", "other: {{ t }}", t=["start", "text"]),
            node("merge", "variable-aggregator",
                 variables=[["refund", "output"], ["greet", "output"], ["other", "output"]]),
            _end("end", result=["merge", "output"]),
        ],
        [edge("start", "check"), edge("check", "refund", "true"),
         edge("check", "greet", "elif-1"), edge("check", "other", "false"),
         edge("refund", "merge"), edge("greet", "merge"), edge("other", "merge"),
         edge("merge", "end")],
    )


def test_if_else_routes_each_case_and_records_only_the_taken_branch() -> None:
    """The first case that holds picks its edge; else 'false'; skipped nodes leave no record."""
    for text, expected, taken in [("a refund please", "refund: a refund please", "refund"),
                                  ("hi there", "hello: hi there", "greet"),
                                  ("weather", "other: weather", "other")]:
        outcome, _events, _engine = run(_if_else(), inputs={"text": text})
        assert outcome.status == WorkflowRunStatus.SUCCEEDED
        assert outcome.outputs == {"result": expected}
        executed = [e.node_id for e in outcome.node_executions]
        assert executed == ["start", "check", taken, "merge", "end"]
        check = outcome.node_executions[1]
        assert check.process_data["condition_results"][0]["case_id"] == "true"
        assert [e.index for e in outcome.node_executions] == [1, 2, 3, 4, 5]
        assert outcome.node_executions[2].predecessor_node_id == "check"


def test_node_execution_is_complete_when_recorded() -> None:
    """Every execution has its own id, UTC times measured at the node, inputs and outputs."""
    outcome, events, _engine = run(_if_else(), inputs={"text": "refund"})
    ids = {e.id for e in outcome.node_executions}
    assert len(ids) == len(outcome.node_executions)
    for execution in outcome.node_executions:
        assert execution.start_time.tzinfo is not None
        assert execution.start_time <= execution.end_time
        assert execution.elapsed_time >= 0
        assert execution.status == NodeStatus.SUCCEEDED and execution.error is None
    refund = next(e for e in outcome.node_executions if e.node_id == "refund")
    assert refund.inputs == {"t": "refund"} and refund.outputs == {"output": "refund: refund"}
    names = [name for name, _ in events]
    assert names.count("node_started") == names.count("node_finished") == 5
    finished = [d for n, d in events if n == "node_finished"]
    assert finished[-1]["status"] == "succeeded" and finished[-1]["node_type"] == "end"


def test_classifier_routes_to_the_class_the_model_picks() -> None:
    """The classifier's answer (schema-valid JSON) selects the class id handle."""
    models = FakeModels(pick=lambda text: "c2" if "invoice" in text else "c1")
    wf = workflow(
        [start("q"),
         node("cls", "question-classifier", query_variable_selector=["start", "q"],
              model={"provider": "langgenius/openai/openai", "name": "gpt-4o", "mode": "chat"},
              classes=[{"id": "c1", "name": "Tech"}, {"id": "c2", "name": "Billing"}]),
         _template("tech", "tech"), _template("billing", "billing"),
         node("agg", "variable-aggregator", variables=[["tech", "output"],
                                                       ["billing", "output"]]),
         _end("end", route=["agg", "output"], cls=["cls", "class_name"])],
        [edge("start", "cls"), edge("cls", "tech", "c1"), edge("cls", "billing", "c2"),
         edge("tech", "agg"), edge("billing", "agg"), edge("agg", "end")],
    )
    outcome, _events, _engine = run(wf, inputs={"q": "my invoice is wrong"}, models=models)
    assert outcome.outputs == {"route": "billing", "cls": "Billing"}
    cls = next(e for e in outcome.node_executions if e.node_id == "cls")
    assert cls.model_provider == "langgenius/openai/openai" and cls.model_name == "gpt-4o"
    assert len(cls.model_calls) == 1 and cls.total_tokens == cls.model_calls[0].total_tokens > 0
    assert cls.process_data["prompts"][1] == {"role": "user", "text": "my invoice is wrong"}
    assert models.requests[0].response_schema is not None


class BarrierTools:
    """A tool both parallel branches must reach before either may go on."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)

    def run(self, name: str, args: dict[str, Any]) -> Any:
        self.barrier.wait()
        return f"{name}:{args.get('text')}"


def test_parallel_branches_run_concurrently_with_their_own_parallel_ids() -> None:
    """Two branches from one node run at once (a barrier proves it) and join afterwards."""
    tool = {"provider_type": "builtin", "provider_id": "t", "tool_name": "meet",
            "tool_parameters": {"text": {"type": "mixed", "value": "{{#start.q#}}"}}}
    wf = workflow(
        [start("q"), node("left", "tool", **tool), node("right", "tool", **tool),
         _template("join", "{{ a }} + {{ b }}", a=["left", "text"], b=["right", "text"]),
         _end("end", out=["join", "output"])],
        [edge("start", "left"), edge("start", "right"), edge("left", "join"),
         edge("right", "join"), edge("join", "end")],
    )
    outcome, _events, _engine = run(wf, inputs={"q": "x"}, tools=BarrierTools(), timeout=20)
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    assert outcome.outputs == {"out": "meet:x + meet:x"}
    by_id = {e.node_id: e for e in outcome.node_executions}
    left, right = by_id["left"], by_id["right"]
    assert left.parallel_id and right.parallel_id and left.parallel_id != right.parallel_id
    assert (left.parallel_start_node_id, right.parallel_start_node_id) == ("left", "right")
    assert left.tool_name == "meet"
    assert by_id["join"].parallel_id is None and by_id["start"].parallel_id is None
    # Both branches started before either finished.
    assert left.start_time < right.end_time and right.start_time < left.end_time


def _iteration(mode: str, *, parallel: bool = False) -> dict[str, Any]:
    code = ("def main(item: str) -> dict:\n"
            "    if item == 'bad':\n"
            "        raise ValueError('bad item')\n"
            "    return {'out': item.upper()}\n")
    return workflow(
        [node("start", "start", variables=[]),
         node("items", "code", code="def main() -> dict:\n    return {'xs': ['a', 'bad', 'c']}\n",
              variables=[], outputs={"xs": {"type": "array[string]"}}),
         node("it", "iteration", iterator_selector=["items", "xs"],
              output_selector=["upper", "out"], output_type="array[string]",
              start_node_id="itstart", error_handle_mode=mode, is_parallel=parallel,
              parallel_nums=3),
         node("itstart", "iteration-start", parent="it"),
         node("upper", "code", parent="it", code=code,
              variables=[{"variable": "item", "value_selector": ["it", "item"]}],
              outputs={"out": {"type": "string"}}),
         _end("end", result=["it", "output"])],
        [edge("start", "items"), edge("items", "it"), edge("itstart", "upper"),
         edge("it", "end")],
    )


def test_iteration_of_three_continues_on_error_and_records_each_index() -> None:
    """continue-on-error: the failing item gives None, the run succeeds, and every child
    execution carries the iteration's execution id and its index."""
    outcome, events, _engine = run(_iteration("continue-on-error"))
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    assert outcome.outputs == {"result": ["A", None, "C"]}
    iteration = next(e for e in outcome.node_executions if e.node_id == "it")
    children = [e for e in outcome.node_executions if e.iteration_id == iteration.id]
    uppers = sorted((e for e in children if e.node_id == "upper"),
                    key=lambda e: e.iteration_index or 0)
    assert [e.iteration_index for e in uppers] == [0, 1, 2]
    assert [e.status for e in uppers] == [NodeStatus.SUCCEEDED, NodeStatus.FAILED,
                                          NodeStatus.SUCCEEDED]
    assert uppers[1].error is not None and "bad item" in uppers[1].error
    assert iteration.process_data["failed_indexes"] == [1]
    names = [n for n, _ in events]
    assert names.count("iteration_next") == 3 and "iteration_completed" in names


def test_iteration_terminates_on_error_by_default_naming_the_item() -> None:
    """terminated: the iteration fails with the child's own error and the run fails."""
    outcome, _events, _engine = run(_iteration("terminated"))
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "iteration item 1 failed" in (outcome.error or "")
    assert "bad item" in (outcome.error or "")


def test_parallel_iteration_removes_abnormal_output_in_order() -> None:
    """Parallel items keep their order; remove-abnormal-output drops the failed one."""
    outcome, _events, _engine = run(_iteration("remove-abnormal-output", parallel=True))
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    assert outcome.outputs == {"result": ["A", "C"]}


def _failing_tool(**extra: Any) -> dict[str, Any]:
    return node("boom", "tool", provider_type="builtin", provider_id="t", tool_name="boom",
                tool_parameters={}, **extra)


def test_fail_branch_takes_the_fail_edge_with_status_exception() -> None:
    """error_strategy fail-branch: status exception, the node's error, the fail-branch edge."""
    wf = workflow(
        [start("q"), _failing_tool(error_strategy="fail-branch"),
         _template("ok", "ok"), _template("handled", "handled: {{ e }}",
                                          e=["boom", "error_message"]),
         node("agg", "variable-aggregator", variables=[["ok", "output"],
                                                       ["handled", "output"]]),
         _end("end", out=["agg", "output"])],
        [edge("start", "boom"), edge("boom", "ok"), edge("boom", "handled", "fail-branch"),
         edge("ok", "agg"), edge("handled", "agg"), edge("agg", "end")],
    )
    outcome, _events, _engine = run(wf, inputs={"q": "x"})
    assert outcome.status == WorkflowRunStatus.PARTIAL_SUCCEEDED
    assert outcome.outputs == {"out": "handled: tool boom exploded"}
    boom = next(e for e in outcome.node_executions if e.node_id == "boom")
    assert boom.status == NodeStatus.EXCEPTION and boom.error == "tool boom exploded"
    assert boom.error_strategy == "fail-branch"
    assert "ok" not in {e.node_id for e in outcome.node_executions}


def test_default_value_and_retries_are_recorded() -> None:
    """Retries run first (retry_count), then default-value gives the declared outputs."""
    wf = workflow(
        [start("q"), _failing_tool(error_strategy="default-value",
                                   default_value=[{"key": "text", "type": "string",
                                                   "value": "fallback"}],
                                   retry_config={"retry_enabled": True, "max_retries": 2,
                                                 "retry_interval": 10}),
         _end("end", out=["boom", "text"])],
        [edge("start", "boom"), edge("boom", "end")],
    )
    outcome, events, _engine = run(wf, inputs={"q": "x"})
    assert outcome.outputs == {"out": "fallback"}
    boom = next(e for e in outcome.node_executions if e.node_id == "boom")
    assert boom.retry_count == 2 and boom.status == NodeStatus.EXCEPTION
    assert [n for n, _ in events].count("node_retry") == 2


def test_node_failure_fails_the_run_with_that_nodes_error() -> None:
    """Without a strategy the run fails with the failing node's own error and stops there."""
    wf = workflow([start("q"), _failing_tool(), _end("end", out=["boom", "text"])],
                  [edge("start", "boom"), edge("boom", "end")])
    outcome, _events, _engine = run(wf, inputs={"q": "x"})
    assert outcome.status == WorkflowRunStatus.FAILED
    assert outcome.error == "node boom failed: tool boom exploded"
    assert [e.node_id for e in outcome.node_executions] == ["start", "boom"]
    assert outcome.node_executions[-1].status == NodeStatus.FAILED


def _spin_workflow(code: str) -> dict[str, Any]:
    """start -> one code node ``spin`` (output ``x``) running ``code`` -> end."""
    return workflow(
        [start("q"),
         node("spin", "code", code=code, variables=[], outputs={"x": {"type": "string"}}),
         _end("end", out=["spin", "x"])],
        [edge("start", "spin"), edge("spin", "end")],
    )


def test_code_node_reaching_its_cpu_limit_reports_the_time_limit() -> None:
    """The CPU limit is the time limit rounded up; a code process stopped by it (SIGXCPU,
    which can come just before the wall-clock timeout) reports the time limit, not a crash."""
    wf = _spin_workflow(
        "import os, signal\n\ndef main() -> dict:\n"
        "    os.kill(os.getpid(), signal.SIGXCPU)\n    return {'x': 'never'}\n"
    )
    outcome, _events, _engine = run(wf, inputs={"q": "x"}, code_sandbox=sandbox(timeout=5.0))
    spin = next(e for e in outcome.node_executions if e.node_id == "spin")
    assert spin.status == NodeStatus.FAILED
    assert spin.error is not None and "time limit of 5 seconds" in spin.error
    assert "signal" not in spin.error


def test_code_node_timeout_fails_that_node_with_its_own_error() -> None:
    """A code node past its time limit is killed; the node says so, the run fails."""
    wf = _spin_workflow("def main() -> dict:\n    while True:\n        pass\n")
    outcome, _events, _engine = run(wf, inputs={"q": "x"}, code_sandbox=sandbox(timeout=1.0))
    spin = next(e for e in outcome.node_executions if e.node_id == "spin")
    assert spin.status == NodeStatus.FAILED
    assert spin.error is not None and "time limit of 1 seconds" in spin.error
    assert outcome.status == WorkflowRunStatus.FAILED and "time limit" in (outcome.error or "")


def test_code_node_returns_declared_outputs_and_checks_types() -> None:
    """main's dict must hold each declared output with its type."""
    ok = workflow(
        [start("q"),
         node("c", "code", code="def main(q: str) -> dict:\n    return {'n': len(q)}\n",
              variables=[{"variable": "q", "value_selector": ["start", "q"]}],
              outputs={"n": {"type": "number"}}),
         _end("end", n=["c", "n"])],
        [edge("start", "c"), edge("c", "end")],
    )
    outcome, _events, _engine = run(ok, inputs={"q": "four"})
    assert outcome.outputs == {"n": 4}
    bad = workflow(
        [start("q"),
         node("c", "code", code="def main(q: str) -> dict:\n    return {'n': q}\n",
              variables=[{"variable": "q", "value_selector": ["start", "q"]}],
              outputs={"n": {"type": "number"}}),
         _end("end", n=["c", "n"])],
        [edge("start", "c"), edge("c", "end")],
    )
    outcome, _events, _engine = run(bad, inputs={"q": "four"})
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "output 'n' must be number" in (outcome.error or "")


def test_run_timeout_fails_the_run_and_records_running_nodes_as_stopped() -> None:
    """A run past its limit ends failed; the node still running is recorded, stopped."""
    wf = workflow(
        [start("q"),
         node("slow", "code", code="import time\ndef main() -> dict:\n    time.sleep(5)\n"
              "    return {'x': 'late'}\n", variables=[], outputs={"x": {"type": "string"}}),
         _end("end", out=["slow", "x"])],
        [edge("start", "slow"), edge("slow", "end")],
    )
    outcome, _events, _engine = run(wf, inputs={"q": "x"}, timeout=1.0,
                                    code_sandbox=sandbox(timeout=6.0))
    assert outcome.status == WorkflowRunStatus.FAILED
    assert outcome.error == "the run exceeded its time limit of 1 seconds"
    slow = next(e for e in outcome.node_executions if e.node_id == "slow")
    assert slow.status == NodeStatus.STOPPED and slow.error == outcome.error


def test_stop_ends_the_run_stopped_before_the_next_node() -> None:
    """A stop request lets the running node finish and starts nothing after it."""

    def stop_at_first(name: str, data: dict[str, Any], engine: Any) -> None:
        if name == "node_started" and data["node_id"] == "greet":
            engine.stop()

    wf = workflow([start("q"), _template("greet", "hi"), _template("after", "after"),
                   _end("end", out=["after", "output"])],
                  [edge("start", "greet"), edge("greet", "after"), edge("after", "end")])
    outcome, _events, _engine = run(wf, inputs={"q": "x"}, listener=stop_at_first)
    assert outcome.status == WorkflowRunStatus.STOPPED
    assert outcome.error == "stopped by the user"
    assert [e.node_id for e in outcome.node_executions] == ["start", "greet"]


def test_loop_repeats_until_break_condition_with_assigner() -> None:
    """A loop variable updated by an assigner ends the loop when the break condition holds."""
    wf = workflow(
        [node("start", "start", variables=[]),
         node("loop", "loop", loop_count=10, start_node_id="lstart",
              loop_variables=[{"label": "n", "var_type": "number", "value_type": "constant",
                               "value": "1"}],
              break_conditions=[{"variable_selector": ["loop", "n"],
                                 "comparison_operator": "≥", "value": "4"}],
              logical_operator="and"),
         node("lstart", "loop-start", parent="loop"),
         node("inc", "assigner", parent="loop", version="2", items=[
             {"variable_selector": ["loop", "n"], "input_type": "constant",
              "operation": "+=", "value": 1}]),
         _end("end", n=["loop", "n"])],
        [edge("start", "loop"), edge("lstart", "inc"), edge("loop", "end")],
    )
    outcome, _events, _engine = run(wf)
    assert outcome.status == WorkflowRunStatus.SUCCEEDED, outcome.error
    assert outcome.outputs == {"n": 4}
    loop = next(e for e in outcome.node_executions if e.node_id == "loop")
    rounds = [e.loop_index for e in outcome.node_executions if e.node_id == "inc"]
    assert rounds == [0, 1, 2] and loop.process_data["rounds"] == 3
    assert all(e.loop_id == loop.id for e in outcome.node_executions if e.node_id == "inc")


def test_template_transform_sandbox_refuses_unsafe_attribute_access() -> None:
    """Jinja2 runs sandboxed: reaching Python internals fails the node."""
    wf = workflow([start("q"),
                   _template("t", "{{ q.__class__.__mro__[1].__subclasses__() }}",
                             q=["start", "q"]),
                   _end("end", out=["t", "output"])],
                  [edge("start", "t"), edge("t", "end")])
    outcome, _events, _engine = run(wf, inputs={"q": "x"})
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "template error" in (outcome.error or "")


def _code_only(code: str) -> dict[str, Any]:
    return workflow(
        [start("q"), node("c", "code", code=code, variables=[],
                          outputs={"x": {"type": "string"}}),
         _end("end", out=["c", "x"])],
        [edge("start", "c"), edge("c", "end")])


def test_code_node_memory_limit_fails_the_node() -> None:
    """Allocating past the memory limit fails that node with a memory error."""
    outcome, _events, _engine = run(_code_only(
        "def main() -> dict:\n    block = bytearray(1024 * 1024 * 1024)\n"
        "    return {'x': str(len(block))}\n"), inputs={"q": "x"})
    assert outcome.status == WorkflowRunStatus.FAILED
    assert "memory" in (outcome.error or "").lower()


def test_code_node_has_no_network_when_unshare_is_available() -> None:
    """With ``unshare -r -n`` the code cannot reach even loopback; without it the node
    records why it had network."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    box = sandbox()
    try:
        outcome, _events, _engine = run(_code_only(
            "import socket\ndef main() -> dict:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
            "    return {'x': 'connected'}\n"), inputs={"q": "x"}, code_sandbox=box)
    finally:
        listener.close()
    code = next(e for e in outcome.node_executions if e.node_id == "c")
    if box.unshare_prefix:
        assert code.status == NodeStatus.FAILED
        assert "OSError" in (code.error or "") or "Error" in (code.error or "")
    else:
        assert code.process_data["sandbox_notes"][0].startswith("no network isolation")


def test_llm_tokens_stream_into_the_answer_that_shows_them_once() -> None:
    """LLM -> answer '{{#llm.text#}}': tokens stream as they come; the answer is not sent
    twice and the stored answer is the whole text."""
    wf = workflow(
        [start("q", required=False),
         node("llm", "llm", model={"provider": "p", "name": "m", "mode": "chat"},
              prompt_template=[{"role": "user", "text": "{{#sys.query#}}"}]),
         node("a", "answer", answer="{{#llm.text#}}")],
        [edge("start", "llm"), edge("llm", "a")])
    outcome, events, _engine = run(wf, mode="advanced-chat", system={"query": "tell me"})
    chunks = [d for n, d in events if n == "text_chunk"]
    assert len(chunks) == 2  # the fake model streams two pieces
    assert all(c["from_variable_selector"] == ["llm", "text"] for c in chunks)
    assert "".join(c["text"] for c in chunks) == outcome.answer == "echo: tell me"
    started = [d["node_id"] for n, d in events if n == "node_started"]
    finished_llm = next(i for i, (n, d) in enumerate(events)
                        if n == "node_finished" and d["node_id"] == "llm")
    first_chunk = next(i for i, (n, _d) in enumerate(events) if n == "text_chunk")
    assert first_chunk < finished_llm and started == ["start", "llm", "a"]


def test_answer_with_more_than_the_llm_text_is_sent_when_reached() -> None:
    """An answer that adds text around the LLM's is sent whole when the answer node runs."""
    wf = workflow(
        [start("q", required=False),
         node("llm", "llm", model={"provider": "p", "name": "m", "mode": "chat"},
              prompt_template=[{"role": "user", "text": "{{#sys.query#}}"}]),
         node("a", "answer", answer="Answer: {{#llm.text#}}")],
        [edge("start", "llm"), edge("llm", "a")])
    outcome, events, _engine = run(wf, mode="advanced-chat", system={"query": "x"})
    chunks = [d for n, d in events if n == "text_chunk"]
    assert [c["text"] for c in chunks] == ["Answer: echo: x"] == [outcome.answer]

"""if-else: the first case whose conditions hold picks its edge; else the 'false' edge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.conditions import evaluate_conditions
from opstrail.runtime.workflow.templates import render_references
from opstrail.runtime.workflow.variables import VariablePool


def condition_resolver(pool: VariablePool) -> Any:
    """Read a condition's actual value (its selector) and expected value (templates
    rendered)."""

    def resolve(condition: Mapping[str, Any]) -> tuple[Any, Any]:
        actual = pool.lookup(condition.get("variable_selector") or [])
        expected = condition.get("value")
        if isinstance(expected, str):
            expected = render_references(expected, pool)
        return actual, expected

    return resolve


def handle(ctx: NodeContext) -> NodeResult:
    """Try each case in order (the pre-ELIF ``conditions`` list is one 'true' case)."""
    cases = list(ctx.data.get("cases") or [])
    if not cases and ctx.data.get("conditions"):
        cases = [{"case_id": "true", "conditions": ctx.data["conditions"],
                  "logical_operator": ctx.data.get("logical_operator") or "and"}]
    resolve = condition_resolver(ctx.pool)
    checked: list[dict[str, Any]] = []
    for case in cases:
        result, details = evaluate_conditions(case.get("conditions") or [],
                                              str(case.get("logical_operator") or "and"),
                                              resolve)
        case_id = str(case.get("case_id") or "true")
        checked.append({"case_id": case_id, "result": result, "conditions": details})
        if result:
            return NodeResult(outputs={"result": True, "selected_case_id": case_id},
                              process_data={"condition_results": checked}, handle=case_id)
    return NodeResult(outputs={"result": False, "selected_case_id": "false"},
                      process_data={"condition_results": checked}, handle="false")

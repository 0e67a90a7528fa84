"""Node executions of a workflow run: which observation type each becomes, and its fields.

The type is decided by what happened, not by a mode flag: every node that called a model is
generation-like with that call's usage (an ``llm``, ``question-classifier``,
``parameter-extractor`` node is a ``generation``; an ``agent`` node is an ``agent`` holding
one ``generation`` per model call); ``knowledge-retrieval`` is a ``retriever``; ``tool`` is a
``tool``; anything else a ``span``. A retriever or tool node that also called a model (a
rerank) gets one child generation per call, so usage stays on leaves.
"""

from __future__ import annotations

from typing import Final

from opstrail import ids
from opstrail.tracing.builders.common import call_observation, observation, plain
from opstrail.tracing.builders.retrieval import documents_output
from opstrail.tracing.info import ModelCall, NodeExecution
from opstrail.tracing.levels import node_verdict
from opstrail.tracing.limits import TRUNCATION_METADATA_KEY
from opstrail.tracing.tree import Observation, ObservationType
from opstrail.tracing.values import JsonValue

RETRIEVAL_NODE: Final = "knowledge-retrieval"
TOOL_NODE: Final = "tool"
AGENT_NODE: Final = "agent"


def node_seed(node: NodeExecution) -> str:
    """Seed of a node execution's observation: ``node:<node_execution_id>``."""
    return ids.seed_node(node.id)


def call_seed(node: NodeExecution, n: int) -> str:
    """Seed of the ``n``-th (from 1) model call of a node that holds several."""
    return f"{ids.seed_node(node.id)}:call:{n}"


def uses_model(node: NodeExecution) -> bool:
    """True when the node invoked a model (recorded calls, or Dify-style summary fields)."""
    return bool(node.model_calls) or node.model_name is not None or node.total_tokens > 0


def summary_call(node: NodeExecution) -> ModelCall:
    """The node's single model call, rebuilt from its summary fields when not recorded."""
    return ModelCall(
        provider=node.model_provider or "",
        model=node.model_name or "",
        start_time=node.start_time,
        end_time=node.end_time,
        prompt_tokens=node.prompt_tokens,
        completion_tokens=node.completion_tokens,
        total_tokens=node.total_tokens,
        model_parameters=dict(node.model_parameters or {}),
        prompt_messages=plain(node.process_data.get("prompts")) or plain(node.inputs),
        completion=plain(node.outputs),
        price=node.total_price,
        currency=node.currency or "USD",
        time_to_first_token=node.time_to_first_token,
    )


def node_type_of(node: NodeExecution) -> ObservationType:
    """The observation type of a node (see the module docstring)."""
    if node.node_type == AGENT_NODE:
        return ObservationType.AGENT
    if node.node_type == RETRIEVAL_NODE:
        return ObservationType.RETRIEVER
    if node.node_type == TOOL_NODE:
        return ObservationType.TOOL
    if uses_model(node):
        return ObservationType.GENERATION if len(node.model_calls) <= 1 else ObservationType.CHAIN
    return ObservationType.SPAN


def node_metadata(node: NodeExecution) -> dict[str, JsonValue]:
    """The node's execution metadata: what it is, where it ran, its own status and totals."""
    # ``_value_`` is what an enum's ``.value`` returns, minus the property call (hot path).
    meta: dict[str, JsonValue] = {
        "node_execution_id": node.id,
        "node_id": node.node_id,
        "node_type": node.node_type,
        "node_name": node.title,
        "index": node.index,
        "predecessor_node_id": node.predecessor_node_id,
        "status": node.status._value_,
        "elapsed_time": node.elapsed_time,
    }
    # Optional keys only when set, in this order (a branch each: this runs for every node).
    if node.error is not None:
        meta["error"] = node.error
    if node.error_strategy is not None:
        meta["error_strategy"] = node.error_strategy
    if node.iteration_id is not None:
        meta["iteration_id"] = node.iteration_id
    if node.iteration_index is not None:
        meta["iteration_index"] = node.iteration_index
    if node.loop_id is not None:
        meta["loop_id"] = node.loop_id
    if node.loop_index is not None:
        meta["loop_index"] = node.loop_index
    if node.parallel_id is not None:
        meta["parallel_id"] = node.parallel_id
    if node.parallel_start_node_id is not None:
        meta["parallel_start_node_id"] = node.parallel_start_node_id
    if node.model_provider is not None:
        meta["model_provider"] = node.model_provider
    if node.model_name is not None:
        meta["model_name"] = node.model_name
    if node.tool_name is not None:
        meta["tool_name"] = node.tool_name
    if node.total_price is not None:
        # plain() of a price is its text, never None.
        meta["total_price"] = plain(node.total_price)
    if node.currency is not None:
        meta["currency"] = node.currency
    if node.total_tokens:
        meta["total_tokens"] = node.total_tokens
    if node.retry_count:
        meta["retry_count"] = node.retry_count
    return meta


def node_observations(node: NodeExecution, *, trace_id: str, parent_id: str) -> list[Observation]:
    """The node's observation, followed by its child generations when it has any."""
    type_ = node_type_of(node)
    # Untitled nodes (an iteration-start, a hand-written DSL) are named by their type, so no
    # observation is ever nameless in Langfuse.
    name = node.title.strip() or node.node_type
    verdict = node_verdict(node.status, node.error)
    meta = node_metadata(node)
    seed = node_seed(node)
    output: JsonValue = plain(node.outputs)
    if type_ is ObservationType.RETRIEVER and node.documents:
        output, cut = documents_output(node.documents)
        if cut:
            meta[TRUNCATION_METADATA_KEY] = True
    if type_ is ObservationType.GENERATION:
        # A one-call node is the generation itself: the rendered prompt in, the completion
        # out when the model returned plain text (else the node's outputs), the node's own
        # status; model, usage and cost from the call.
        call = node.model_calls[0] if node.model_calls else summary_call(node)
        prompt = call.prompt_messages if call.prompt_messages is not None else plain(node.inputs)
        return [
            observation(
                trace_id=trace_id,
                seed=seed,
                type_=type_,
                name=name,
                start=node.start_time,
                end=node.end_time,
                parent_id=parent_id,
                input_=prompt,
                output=call.completion if isinstance(call.completion, str) else output,
                metadata=meta,
                verdict=verdict,
                model_call=call,
            )
        ]
    parent = observation(
        trace_id=trace_id,
        seed=seed,
        type_=type_,
        name=name,
        start=node.start_time,
        end=node.end_time,
        parent_id=parent_id,
        input_=plain(node.inputs),
        output=output,
        metadata=meta,
        verdict=verdict,
    )
    parent_obs_id = parent.id
    calls = node.model_calls
    if not calls and uses_model(node) and type_ is not ObservationType.SPAN:
        calls = (summary_call(node),)
    children = [
        call_observation(
            call,
            trace_id=trace_id,
            seed=call_seed(node, n),
            name="llm",
            parent_id=parent_obs_id,
            metadata={"node_execution_id": node.id, "call": n},
        )
        for n, call in enumerate(calls, start=1)
    ]
    return [parent, *children]

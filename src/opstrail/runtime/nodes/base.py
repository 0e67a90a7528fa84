"""What a node handler gets and returns.

A handler is ``handle(ctx: NodeContext) -> NodeResult``. It reads variables through
``ctx.pool``, calls models, tools and the retriever through ``ctx.env`` (protocols the
services layer fills in), and raises ``NodeFailure`` (or any ``OpstrailError``) with a message
that names what went wrong. The engine measures time, records the execution and applies the
node's retry and error strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

from opstrail.errors import RuntimeFailure
from opstrail.runtime.dsl.graph import NodeSpec
from opstrail.runtime.models.base import ModelClient
from opstrail.runtime.ports import Retriever
from opstrail.runtime.workflow.variables import VariablePool
from opstrail.tracing.info import ModelCall, RetrievedDocument

if TYPE_CHECKING:
    import httpx

    from opstrail.runtime.nodes.code import CodeSandbox
    from opstrail.runtime.workflow.engine import ExecScope, WorkflowEngine


class NodeFailure(RuntimeFailure):
    """A node could not do its work; the message is the node's own error."""

    code = "node_failed"


class ModelResolver(Protocol):
    """Finds the client of a model (engineer H's ``ModelRegistry`` fits)."""

    def client_for(self, provider: str, model: str) -> ModelClient:
        """The client that serves ``provider``/``model``; raises when none does."""
        ...


class ToolRunner(Protocol):
    """Runs built-in tools by name (engineer H's tool registry fits)."""

    def run(self, name: str, args: Mapping[str, Any]) -> Any:
        """Run tool ``name``; raises ``RuntimeFailure`` when it fails or is unknown."""
        ...


UrlCheck = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class OutboundHttp:
    """How http-request nodes reach the network: the services layer fills this in with the
    exporters' guarded transport (the runtime may not import the exporters).

    ``check_url`` checks a URL before any I/O, but a stock transport resolves the name again
    when it connects, so a name that then answers a forbidden address (DNS rebinding) would be
    reached. ``transport(verify)`` builds the transport of one node's client; it must resolve
    each new connection's host once, check every address by the rules ``check_url`` applies,
    and connect only to a checked address. ``refusal(error)`` is netguard's reason (naming the
    address and the rule) when ``error`` is such a transport refusing a connection, else None.
    """

    transport: Callable[[bool], httpx.BaseTransport]
    refusal: Callable[[BaseException], str | None]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a chatflow conversation (memory)."""

    query: str
    answer: str


@dataclass(frozen=True)
class RunEnvironment:
    """Everything outside the graph a run may use; built per run by the services layer.

    ``check_url`` refuses http-request targets (SSRF guard) and ``outbound_http`` checks
    every address they connect to (without it, http-request nodes fail rather than send
    unchecked); ``history`` holds the earlier turns of a chatflow conversation, oldest first.
    """

    models: ModelResolver
    check_url: UrlCheck
    code_sandbox: CodeSandbox
    tools: ToolRunner | None = None
    retriever: Retriever | None = None
    http_timeout: float = 10.0
    outbound_http: OutboundHttp | None = None
    history: Sequence[Turn] = ()
    jinja: SandboxedEnvironment = field(default_factory=SandboxedEnvironment)
    # Compiled Jinja2 templates of this run (dict writes are atomic under the GIL).
    jinja_cache: dict[str, Template] = field(default_factory=dict)


@dataclass
class NodeResult:
    """What a node produced. ``handle`` selects the outgoing edges (``source`` by default;
    a case id for if-else, a class id for the classifier)."""

    outputs: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    process_data: dict[str, Any] = field(default_factory=dict)
    handle: str = "source"
    model_calls: list[ModelCall] = field(default_factory=list)
    documents: tuple[RetrievedDocument, ...] = ()
    tool_name: str | None = None
    children_tokens: int = 0


@dataclass
class NodeContext:
    """A node's view of the run while it executes."""

    node: NodeSpec
    pool: VariablePool
    env: RunEnvironment
    engine: WorkflowEngine
    scope: ExecScope
    execution_id: str

    @property
    def data(self) -> Mapping[str, Any]:
        return self.node.data

    def fail(self, message: str, *, code: str = "node_failed") -> NodeFailure:
        """A failure naming this node's error."""
        return NodeFailure(message, code=code)


NodeHandler = Callable[[NodeContext], NodeResult]

"""The opstrail exception tree.

Every error opstrail raises on purpose is an ``OpstrailError``; the HTTP layer maps them to
answers in one place (``opstrail.api.errors``). Callers catch at the depth they care about::

    OpstrailError
    ├── TraceModelError            a trace record that cannot be built or is incomplete
    │   └── NaiveDatetimeError     a datetime without a time zone
    ├── InvalidIdError             an id that breaks the id rules
    ├── ConfigError                a deployment setting that cannot work
    ├── NotFoundError              an app, conversation, message, run or config that is absent
    ├── ConflictError              a resource that already exists
    ├── AuthError                  the console token or an app key is wrong
    ├── ValidationError            input that is malformed or incomplete (400/422)
    │   ├── DslError               a DSL document that cannot be honoured
    │   └── TracingConfigError     Langfuse credentials or host refused at save (has a code)
    ├── RuntimeFailure             an app run failed (model, node, tool, timeout)
    └── DeliveryError              the outbox or a dispatcher cannot proceed

This module imports nothing from opstrail, so every layer may use it.
"""

from __future__ import annotations


class OpstrailError(Exception):
    """Base of every error opstrail raises deliberately.

    Args:
        message: a plain sentence for the person who will read it.
        code: a stable machine-readable code (snake_case).
    """

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class TraceModelError(OpstrailError):
    """A trace record is inconsistent or incomplete."""

    code = "trace_model_error"


class NaiveDatetimeError(TraceModelError):
    """A datetime without a time zone reached the trace model."""

    code = "naive_datetime"


class InvalidIdError(OpstrailError):
    """An id does not follow the id rules (see ``opstrail.ids``)."""

    code = "invalid_id"


class ConfigError(OpstrailError):
    """A deployment setting cannot work."""

    code = "config_error"


class NotFoundError(OpstrailError):
    """The requested resource does not exist."""

    code = "not_found"


class ConflictError(OpstrailError):
    """The resource already exists."""

    code = "conflict"


class AuthError(OpstrailError):
    """The console token or the app key is missing or wrong."""

    code = "unauthorized"


class ValidationError(OpstrailError):
    """Input is malformed or incomplete."""

    code = "invalid_param"


class DslError(ValidationError):
    """A DSL document cannot be honoured; the message names the part."""

    code = "invalid_dsl"


class TracingConfigError(ValidationError):
    """Langfuse credentials or host were refused at save time.

    ``code`` is one of ``host_unreachable``, ``tls_error``, ``not_langfuse``, ``unauthorized``,
    ``organization_key``, ``no_project``, ``usage_suspended``, ``invalid_host``.
    """

    code = "tracing_config_error"


class RuntimeFailure(OpstrailError):
    """An app run failed: the model, a node, a tool or the run timeout."""

    code = "run_failed"


class DeliveryError(OpstrailError):
    """The outbox or a dispatcher cannot proceed."""

    code = "delivery_error"

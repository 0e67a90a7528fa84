"""Frozen id rules shared by every ingestion path.

Langfuse trace ids are 32 lowercase hex characters and observation ids 16. Both are derived
deterministically from domain ids, so a retry, a re-export or a switch between the OTLP and the
legacy path reproduces the same ids. Changing these rules breaks every stored link and every
idempotent retry: they are frozen (see docs/decisions.md of the project).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Final

from opstrail.errors import InvalidIdError

TRACE_ID_RE: Final = re.compile(r"^[0-9a-f]{32}$")
OBSERVATION_ID_RE: Final = re.compile(r"^[0-9a-f]{16}$")
EXTERNAL_TRACE_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_UUID_RE: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


_SHA256: Final = hashlib.sha256


def _sha256_hex(seed: str) -> str:
    return _SHA256(seed.encode("utf-8")).hexdigest()


def trace_id(domain_id: str) -> str:
    """Return the 32-hex Langfuse trace id of a domain id.

    A UUID loses its dashes and is lowercased; a 32-hex string is kept (lowercased); any other
    value is ``sha256(value)`` cut to 32 hex characters (what Langfuse's own SDK does).

    Raises:
        InvalidIdError: the domain id is empty.
    """
    if not domain_id:
        raise InvalidIdError("a trace id needs a non-empty domain id")
    if _UUID_RE.match(domain_id):
        return domain_id.replace("-", "").lower()
    if TRACE_ID_RE.match(domain_id):
        return domain_id
    return _sha256_hex(domain_id)[:32]


def observation_id(seed: str) -> str:
    """Return the 16-hex observation id of a namespaced seed such as ``node:<id>``.

    Raises:
        InvalidIdError: the seed is empty.
    """
    if not seed:
        raise InvalidIdError("an observation id needs a non-empty seed")
    # _sha256_hex written out: this runs for every observation built.
    return _SHA256(seed.encode()).hexdigest()[:16]


def external_trace_id(raw: str) -> str:
    """Return the Langfuse trace id for a caller-given trace id (``X-Trace-Id``).

    32 lowercase hex is used as is, a UUID loses its dashes, anything else is hashed.

    Raises:
        InvalidIdError: the value does not match ``^[A-Za-z0-9_-]{1,128}$``.
    """
    if not EXTERNAL_TRACE_ID_RE.match(raw):
        raise InvalidIdError(
            "trace_id must be 1 to 128 characters of letters, digits, '_' or '-'"
        )
    if TRACE_ID_RE.match(raw):
        return raw
    return trace_id(raw)


def score_id(message_id: str, name: str = "user-feedback") -> str:
    """Return the deterministic 32-hex id of a feedback score on a message."""
    return _sha256_hex(f"score:{message_id}:{name}")[:32]


def event_id(body_id: str, event_type: str, revision: str = "1") -> str:
    """Return a deterministic legacy-ingestion event id for one entity revision."""
    return _sha256_hex(f"{body_id}:{event_type}:{revision}")[:32]


def new_uuid() -> str:
    """Return a new random UUID string: for domain ids only, never for trace ids."""
    return str(uuid.uuid4())


# Seeds of observation ids (decisions.md, "Ids"). Builders call these; nothing else spells them.
def seed_run(workflow_run_id: str) -> str:
    return f"run:{workflow_run_id}"


def seed_node(node_execution_id: str) -> str:
    return f"node:{node_execution_id}"


def seed_message(message_id: str, part: str) -> str:
    """Seed for a message-trace observation: part is ``root``, ``llm``, ``agent``,
    ``agent:<round>``, ``tool:<thought_id>``, ``retrieval``, ``moderation:input`` or
    ``moderation:output``, ``suggested``."""
    return f"msg:{message_id}:{part}"


def seed_conversation_name(conversation_id: str, n: int) -> str:
    return f"conv:{conversation_id}:name:{n}"


def seed_conversation_root(conversation_id: str) -> str:
    return f"conv:{conversation_id}"


def seed_iteration(node_execution_id: str, index: int) -> str:
    return f"iter:{node_execution_id}:{index}"


def seed_loop(node_execution_id: str, index: int) -> str:
    return f"loop:{node_execution_id}:{index}"


def seed_parallel(workflow_run_id: str, parallel_id: str) -> str:
    return f"par:{workflow_run_id}:{parallel_id}"

"""App use cases: import a DSL document, list/get/delete apps, service API keys.

``import_app`` accepts every document it can honour and reports warnings; it refuses only what
cannot run, naming it (decisions.md "Runs"). Chat, agent-chat and completion documents are read
by ``runtime.dsl.model_config``; workflow and advanced-chat documents by
``runtime.dsl.graph.parse_graph``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from opstrail.delivery.outbox import cancel_pending
from opstrail.errors import DslError, NotFoundError
from opstrail.runtime.dsl import graph
from opstrail.runtime.dsl.model_config import AppSpec, parse_model_config
from opstrail.runtime.dsl.parse import (
    MODEL_CONFIG_MODES,
    WORKFLOW_MODES,
    check_name,
    parse_document,
)
from opstrail.settings import Settings
from opstrail.storage.base import utcnow
from opstrail.storage.repos import chat as chat_repo
from opstrail.storage.repos import datasets as dataset_repo
from opstrail.storage.tables.apps import App, AppApiKey

CURRENT_DSL_VERSION: Final = "0.6.0"
_VERSION_RE: Final = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
TOKEN_PREFIX: Final = "app-"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: Dify's ``{id, status, app_id, app_mode, warnings}``."""

    id: str
    status: str
    app_id: str
    app_mode: str
    app_name: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _version_warning(version: str) -> str | None:
    match = _VERSION_RE.match(version.strip())
    if match is None:
        raise DslError(f"version {version!r} is not a DSL version such as '0.1.5'")
    current = tuple(int(p) for p in CURRENT_DSL_VERSION.split("."))
    given = tuple(int(p) for p in match.groups())
    if given > current:
        return f"DSL version {version} is newer than {CURRENT_DSL_VERSION}; unknown keys are ignored"
    if given[0] < current[0] or given[1] < current[1]:
        return f"DSL version {version} is older than {CURRENT_DSL_VERSION}; defaults fill missing keys"
    return None


def dataset_ids_of(spec: AppSpec | None, workflow: Mapping[str, object] | None) -> list[str]:
    """Dataset ids a document refers to (model config, or knowledge-retrieval nodes)."""
    if spec is not None:
        return list(spec.datasets.dataset_ids)
    ids: list[str] = []
    graph_part = workflow.get("graph") if workflow else None
    nodes = graph_part.get("nodes") if isinstance(graph_part, Mapping) else None
    for node in nodes if isinstance(nodes, list) else []:
        data = node.get("data") if isinstance(node, Mapping) else None
        if isinstance(data, Mapping) and data.get("type") == "knowledge-retrieval":
            for dataset_id in data.get("dataset_ids") or []:
                if str(dataset_id) not in ids:
                    ids.append(str(dataset_id))
    return ids


def import_app(
    session: Session,
    settings: Settings,
    *,
    yaml_content: str,
    tenant_id: str,
    account_id: str | None,
    dataset_map: Mapping[str, str] | None = None,
) -> ImportResult:
    """Create an app from a DSL document and commit.

    Args:
        dataset_map: DSL dataset id -> local dataset id. Ids not in the map resolve to a
            local dataset with the same id, else stay unresolved (a warning).

    Raises:
        DslError: the document cannot be honoured; the message names the part.
    """
    document = parse_document(yaml_content)
    warnings: list[str] = []
    version_warning = _version_warning(document.version)
    if version_warning:
        warnings.append(version_warning)
    spec: AppSpec | None = None
    mode = document.app.mode
    if mode in MODEL_CONFIG_MODES:
        assert document.model_config is not None  # parse_document checked it
        spec, spec_warnings = parse_model_config(document.model_config, mode=mode)
        warnings.extend(spec_warnings)
    elif mode in WORKFLOW_MODES:
        assert document.workflow is not None
        _graph, graph_warnings = graph.parse_graph(document.workflow, mode=mode)
        warnings.extend(str(w) for w in graph_warnings)
    links: dict[str, str | None] = {}
    for dsl_id in dataset_ids_of(spec, document.workflow):
        check_name(dsl_id, "a dataset id")
        local = (dataset_map or {}).get(dsl_id, dsl_id)
        found = dataset_repo.get_dataset(session, dataset_id=local)
        if found is None or found.tenant_id != tenant_id:
            links[dsl_id] = None
            warnings.append(
                f"dataset {dsl_id} does not exist here; retrieval from it returns nothing "
                "(create it with `opstrail datasets create NAME --from DIR --id ID`)"
            )
        else:
            links[dsl_id] = found.id
    app = App(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        name=document.app.name,
        mode=mode,
        description=document.app.description,
        dsl=yaml_content,
        dsl_version=document.version[:16],
        created_by=account_id,
    )
    session.add(app)
    session.flush()
    dataset_repo.set_app_links(session, app_id=app.id, links=links)
    session.commit()
    return ImportResult(
        id=str(uuid.uuid4()),
        status="completed-with-warnings" if warnings else "completed",
        app_id=app.id,
        app_mode=mode,
        app_name=app.name,
        warnings=tuple(warnings),
    )


def load_spec(app: App) -> AppSpec:
    """The runnable spec of a chat, agent-chat or completion app (from its stored DSL).

    Raises:
        DslError: the app is a workflow app, or its stored document no longer parses.
    """
    document = parse_document(app.dsl)
    if document.model_config is None:
        raise DslError(f"app {app.id} is a {app.mode} app; it has no model_config")
    spec, _warnings = parse_model_config(document.model_config, mode=app.mode)
    return spec


class SpecCache:
    """Parsed specs of apps, keyed by app id and the document's hash (one per server).

    Parsing a DSL document costs tens of milliseconds with PyYAML; a message should not pay
    it every time. A changed document has another hash, so a stale spec is never used.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[str, str], AppSpec] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def spec(self, app: App) -> AppSpec:
        """The spec of ``app`` (see ``load_spec``)."""
        key = (app.id, hashlib.sha256(app.dsl.encode("utf-8")).hexdigest())
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        spec = load_spec(app)
        with self._lock:
            self._entries[key] = spec
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return spec


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_key(session: Session, app_id: str) -> str:
    """Create a service API key for an app, store only its SHA-256, commit, return it once.

    Raises:
        NotFoundError: no such app.
    """
    if session.get(App, app_id) is None:
        raise NotFoundError(f"app {app_id} does not exist", code="app_not_found")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    session.add(
        AppApiKey(
            id=str(uuid.uuid4()),
            app_id=app_id,
            token_sha256=hash_token(token),
            prefix=token[:12],
            created_at=utcnow(),
        )
    )
    session.commit()
    return token


def app_for_token(session: Session, token: str) -> App | None:
    """The app a service API key belongs to, or ``None``."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key = session.scalars(
        select(AppApiKey).where(AppApiKey.token_sha256 == hash_token(token))
    ).first()
    if key is None:
        return None
    return session.get(App, key.app_id)


def list_apps(session: Session, *, tenant_id: str) -> list[App]:
    return list(
        session.scalars(select(App).where(App.tenant_id == tenant_id).order_by(App.created_at.desc()))
    )


def get_app(session: Session, *, tenant_id: str, app_id: str) -> App:
    """Raises ``NotFoundError`` when the app is absent or of another tenant."""
    app = session.get(App, app_id)
    if app is None or app.tenant_id != tenant_id:
        raise NotFoundError(f"app {app_id} does not exist", code="app_not_found")
    return app


def delete_app(session: Session, *, tenant_id: str, app_id: str) -> None:
    """Delete an app with its keys, conversations, messages and dataset links, and cancel its
    unsent traces; commit."""
    app = get_app(session, tenant_id=tenant_id, app_id=app_id)
    # Traces not yet sent would find no app and no destination: cancel them with the app.
    cancel_pending(session, app.id)
    chat_repo.delete_app_rows(session, app_id=app.id)
    dataset_repo.set_app_links(session, app_id=app.id, links={})
    session.execute(delete(AppApiKey).where(AppApiKey.app_id == app.id))
    session.delete(app)
    session.commit()

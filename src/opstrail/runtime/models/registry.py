"""Which client answers a (provider, model) pair.

DSL provider names come in three spellings (``langgenius/openai/openai``, ``openai``,
``azure_openai``...). OpenAI-family providers go to the OpenAI-compatible endpoint when it is
configured (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``, read by the caller and passed in
``ModelOptions``). ``opstrail/offline`` is always available. With ``fallback="offline"`` any
provider that is not configured runs on the offline model, and the resolution says so, so the
trace can record the model that was really asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final, Literal

from opstrail.errors import RuntimeFailure
from opstrail.runtime.models import offline
from opstrail.runtime.models.base import ModelClient
from opstrail.runtime.models.openai_compat import OpenAICompatModel

OPENAI_FAMILY: Final = frozenset(
    {"openai", "azure_openai", "openai_api_compatible", "openai_compatible"}
)


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """What the registry needs from the deployment."""

    openai_base_url: str | None = None
    openai_api_key: str | None = None
    fallback: Literal["offline"] | None = None
    timeout_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The client for a request, and which provider/model really answers.

    ``requested_provider``/``requested_model`` are what the DSL asked for; they differ from
    ``provider``/``model`` when the offline fallback answers.
    """

    client: ModelClient
    provider: str
    model: str
    requested_provider: str
    requested_model: str
    is_fallback: bool = False


def short_provider(provider: str) -> str:
    """``langgenius/openai/openai`` -> ``openai``; a bare name is kept."""
    return provider.rsplit("/", 1)[-1] if provider else provider


class ModelRegistry:
    """Resolves models to clients; one instance per server or CLI run (never global)."""

    def __init__(self, options: ModelOptions) -> None:
        self._options = options
        self._offline = offline.OfflineModel()
        self._openai: OpenAICompatModel | None = None
        self._lock = threading.Lock()

    @property
    def openai_configured(self) -> bool:
        return bool(self._options.openai_api_key or self._options.openai_base_url)

    def client_for(self, provider: str, model: str) -> ModelClient:
        """The client for ``provider``/``model``.

        Raises:
            RuntimeFailure: code ``provider_not_initialize`` when the provider is not
                configured and no fallback is set.
        """
        return self.resolve(provider, model).client

    def resolve(self, provider: str, model: str) -> ResolvedModel:
        """Like ``client_for`` but says which model really answers."""
        name = short_provider(provider)
        if name == offline.PROVIDER or (provider == "opstrail" and model == offline.MODEL):
            return ResolvedModel(self._offline, offline.PROVIDER, offline.MODEL, provider, model)
        if name in OPENAI_FAMILY and self.openai_configured:
            return ResolvedModel(self._openai_client(), name, model, provider, model)
        if self._options.fallback == "offline":
            return ResolvedModel(
                self._offline, offline.PROVIDER, offline.MODEL, provider, model, is_fallback=True
            )
        hint = (
            "set OPENAI_BASE_URL/OPENAI_API_KEY"
            if name in OPENAI_FAMILY
            else "only OpenAI-compatible providers and opstrail/offline are supported"
        )
        raise RuntimeFailure(
            f"model provider {provider!r} is not configured ({hint}; "
            "or set OPSTRAIL_MODEL_FALLBACK=offline)",
            code="provider_not_initialize",
        )

    def _openai_client(self) -> OpenAICompatModel:
        with self._lock:
            if self._openai is None:
                self._openai = OpenAICompatModel(
                    provider="openai",
                    base_url=self._options.openai_base_url,
                    api_key=self._options.openai_api_key or "not-set",
                    timeout=self._options.timeout_seconds,
                )
            return self._openai

    def close(self) -> None:
        """Close the HTTP clients the registry built."""
        with self._lock:
            if self._openai is not None:
                self._openai.close()
                self._openai = None

"""Tracing providers opstrail can send to, each described once.

A provider entry says which settings and secrets its configuration has, how to normalise and
check them (``parse``, no network), how to validate them against the server (``check``,
network), and how to turn a stored configuration into an ``exporters.base.Destination``. The
console API, the CLI, the web pages and the destination resolver all go through this registry,
so adding a provider means one entry here plus its exporter; the runtime and the outbox do not
change (they only see trace records and destinations).

Langfuse is the only provider today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Final, Protocol

import httpx

from opstrail.errors import ValidationError
from opstrail.exporters.base import Destination, IngestionPath
from opstrail.exporters.probe import check_credentials
from opstrail.netguard import check_host_url
from opstrail.settings import Settings

LANGFUSE: Final = "langfuse"
LANGFUSE_DEFAULT_HOST: Final = "https://cloud.langfuse.com"
MAX_KEY_CHARS: Final = 512
MAX_HOST_CHARS: Final = 2048
# Fields a GET shows inside tracing_config that clients may send back; they are ignored.
READ_ONLY_KEYS: Final = frozenset({"project_url", "project_key"})


@dataclass(frozen=True, slots=True)
class ProviderValues:
    """A provider configuration: plain settings (stored as JSON) and secrets (encrypted)."""

    settings: Mapping[str, str | None]
    secrets: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ValidatedProject:
    """What validation learned about the destination; stored with the configuration."""

    project_id: str | None
    project_name: str | None
    project_url: str | None
    server_version: str | None
    ingestion_path: str
    warning: str | None = None
    validated_at: datetime | None = None


class TracingProvider(Protocol):
    """One tracing backend, as the configuration layer sees it."""

    @property
    def name(self) -> str:
        """The registry key and API name (``langfuse``)."""
        ...

    @property
    def title(self) -> str:
        """The name shown to people (``Langfuse``)."""
        ...

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """Configuration fields stored encrypted and shown only as hints."""
        ...

    @property
    def setting_keys(self) -> tuple[str, ...]:
        """Configuration fields stored in plaintext."""
        ...

    @property
    def exporter_factory(self) -> str:
        """Dotted path of the factory that builds the exporter for this provider's
        destinations."""
        ...

    def parse(self, values: Mapping[str, object], *, settings: Settings) -> ProviderValues:
        """Check and normalise a complete configuration (no network).

        Raises:
            ValidationError: a field is missing or malformed (code ``invalid_tracing_config``).
            TracingConfigError: the host is refused (code ``invalid_host``/``host_unreachable``).
        """
        ...

    def check(self, values: ProviderValues, *, client: httpx.Client) -> ValidatedProject:
        """Validate the configuration against the server.

        Raises:
            TracingConfigError: with the reason's code.
        """
        ...

    def destination(self, values: ProviderValues, project: ValidatedProject) -> Destination:
        """The destination to deliver to, with decrypted secrets."""
        ...


def _text(values: Mapping[str, object], name: str, *, required: bool, max_chars: int) -> str | None:
    value = values.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ValidationError(
                f"tracing_config.{name} is required.", code="invalid_tracing_config"
            )
        return None
    if not isinstance(value, str):
        raise ValidationError(
            f"tracing_config.{name} must be a string.", code="invalid_tracing_config"
        )
    value = value.strip()
    if not value:
        raise ValidationError(f"tracing_config.{name} is empty.", code="invalid_tracing_config")
    if len(value) > max_chars:
        raise ValidationError(
            f"tracing_config.{name} is longer than {max_chars} characters.",
            code="invalid_tracing_config",
        )
    return value


def _key(values: Mapping[str, object], name: str) -> str:
    value = _text(values, name, required=True, max_chars=MAX_KEY_CHARS)
    assert value is not None
    # Keys travel in an HTTP Basic header: printable ASCII without spaces or ':' in the public key.
    if not all(0x21 <= ord(ch) <= 0x7E for ch in value):
        raise ValidationError(
            f"tracing_config.{name} may only contain printable ASCII characters without spaces.",
            code="invalid_tracing_config",
        )
    return value


@dataclass(frozen=True, slots=True)
class LangfuseProvider:
    """Langfuse (Cloud or self-hosted): public key, secret key, host, optional path override."""

    name: str = LANGFUSE
    title: str = "Langfuse"
    secret_keys: tuple[str, ...] = ("public_key", "secret_key")
    setting_keys: tuple[str, ...] = ("host", "ingestion_path")
    exporter_factory: str = "opstrail.exporters.registry:exporter_for"

    def parse(self, values: Mapping[str, object], *, settings: Settings) -> ProviderValues:
        unknown = sorted(
            set(values) - set(self.secret_keys) - set(self.setting_keys) - READ_ONLY_KEYS
        )
        if unknown:
            raise ValidationError(
                f"tracing_config has unknown field(s): {', '.join(unknown)}.",
                code="invalid_tracing_config",
            )
        public_key = _key(values, "public_key")
        secret_key = _key(values, "secret_key")
        if ":" in public_key:
            raise ValidationError(
                "tracing_config.public_key must not contain ':'.", code="invalid_tracing_config"
            )
        if public_key.startswith("sk-lf-") and secret_key.startswith("pk-lf-"):
            raise ValidationError(
                "The public and secret keys look swapped: the public key starts with pk-lf-, "
                "the secret key with sk-lf-.",
                code="invalid_tracing_config",
            )
        host_text = _text(values, "host", required=False, max_chars=MAX_HOST_CHARS)
        host = check_host_url(
            host_text or LANGFUSE_DEFAULT_HOST,
            refuse_private=settings.refuse_private_hosts,
            loopback_only=settings.loopback_only_hosts,
        )
        path = _text(values, "ingestion_path", required=False, max_chars=16)
        if path is not None and path not in {p.value for p in IngestionPath}:
            raise ValidationError(
                "tracing_config.ingestion_path must be 'otlp', 'legacy' or empty (automatic).",
                code="invalid_tracing_config",
            )
        return ProviderValues(
            settings={"host": host, "ingestion_path": path},
            secrets={"public_key": public_key, "secret_key": secret_key},
        )

    def check(self, values: ProviderValues, *, client: httpx.Client) -> ValidatedProject:
        host = values.settings["host"]
        assert host is not None
        project = check_credentials(
            host, values.secrets["public_key"], values.secrets["secret_key"], client=client
        )
        override = values.settings.get("ingestion_path")
        path = override or str(project.server.path.value)
        return ValidatedProject(
            project_id=project.project_id,
            project_name=project.project_name,
            project_url=f"{host}/project/{project.project_id}",
            server_version=project.server.version,
            ingestion_path=path,
            warning=project.server.warning,
        )

    def destination(self, values: ProviderValues, project: ValidatedProject) -> Destination:
        host = values.settings["host"]
        assert host is not None
        return Destination(
            host=host,
            public_key=values.secrets["public_key"],
            secret_key=values.secrets["secret_key"],
            project_id=project.project_id,
            path=IngestionPath(project.ingestion_path),
            server_version=project.server_version,
            path_fixed=bool(values.settings.get("ingestion_path")),
            probed_at=project.validated_at,
        )


# Read-only: the registry is fixed at import, like a table of constants.
PROVIDERS: Final[Mapping[str, TracingProvider]] = MappingProxyType({LANGFUSE: LangfuseProvider()})


def provider_named(name: str | None) -> TracingProvider:
    """The registry entry for ``name``.

    Raises:
        ValidationError: code ``invalid_tracing_provider`` for an unknown name.
    """
    provider = PROVIDERS.get(name or "")
    if provider is None:
        raise ValidationError(
            f"Unknown tracing provider {name!r}; known: {', '.join(sorted(PROVIDERS))}.",
            code="invalid_tracing_provider",
        )
    return provider

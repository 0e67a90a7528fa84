"""What a collector is told at start: key pairs, the Langfuse version it imitates, limits.

A collector imitates one Langfuse server version (``--langfuse-version``). The version decides
which write paths exist: 4.x accepts OTLP and scores and answers legacy trace events with
"Event type not accepted"; 3.x accepts both paths (OTLP from 3.22); 2.x has only the legacy
batch API (OTLP answers 404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from opstrail.collector.faults import FaultConfig
from opstrail.errors import ConfigError

DEFAULT_PUBLIC_KEY: Final = "pk-lf-local"
DEFAULT_SECRET_KEY: Final = "sk-lf-local"
DEFAULT_PROJECT: Final = "local"
DEFAULT_VERSION: Final = "4.16.0"
ORGANIZATION_MARKER: Final = "!org"

MB: Final = 1024 * 1024
LEGACY_MAX_BYTES: Final = int(4.5 * MB)  # Next.js sizeLimit "4.5mb" of the ingestion route
SCORES_MAX_BYTES: Final = 1 * MB  # the default Next.js body limit
OTLP_MAX_BYTES: Final = 5 * MB  # Langfuse Cloud's documented per-request limit

_VERSION_RE: Final = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")

WriteMode = Literal["events_only", "v3", "v2"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """One Langfuse API key pair and what it gives access to.

    ``project_id`` None means the pair resolves to no project (``/projects`` answers an empty
    list); ``organization_key`` makes it an organization-scoped key (refused on project routes).
    """

    public_key: str
    secret_key: str
    project_id: str | None = DEFAULT_PROJECT
    project_name: str | None = None
    organization_key: bool = False

    @property
    def display_project(self) -> str:
        """The project name shown to users (the id when no name was given)."""
        return self.project_name or self.project_id or ""

    @classmethod
    def parse(cls, spec: str) -> KeyPair:
        """Parse ``pk:sk[:project]``.

        ``pk:sk`` gets the default project ``local``; ``pk:sk:`` has no project;
        ``pk:sk:!org`` is an organization key.

        Raises:
            ConfigError: the spec has no public or secret key.
        """
        parts = spec.strip().split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ConfigError(f"key pair {spec!r} is not 'public:secret[:project]'")
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        project = parts[2]
        if project == ORGANIZATION_MARKER:
            return cls(parts[0], parts[1], project_id=None, organization_key=True)
        return cls(parts[0], parts[1], project_id=project or None)

    @classmethod
    def coerce(cls, value: KeyPair | tuple[str, ...] | str) -> KeyPair:
        """Accept a KeyPair, a ``pk:sk[:project]`` string or a ``(pk, sk[, project])`` tuple.

        In a tuple, a project of None means no project and ``"!org"`` an organization key.
        """
        if isinstance(value, KeyPair):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if len(value) == 2:
            return cls(value[0], value[1])
        if len(value) == 3:
            project = value[2]
            if project == ORGANIZATION_MARKER:
                return cls(value[0], value[1], project_id=None, organization_key=True)
            return cls(value[0], value[1], project_id=project or None)
        raise ConfigError(f"key pair {value!r} is not (public, secret[, project])")


def read_keys_file(path: Path) -> tuple[KeyPair, ...]:
    """Read one ``pk:sk[:project]`` per line; blank lines and ``#`` comments are skipped.

    Raises:
        ConfigError: the file cannot be read or a line is malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read keys file {path}: {exc}") from exc
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pairs.append(KeyPair.parse(line))
    return tuple(pairs)


def parse_version(version: str) -> tuple[int, int, int]:
    """Return (major, minor, patch) of a version such as ``4.16.0`` or ``v3.225.4``.

    Raises:
        ConfigError: the text does not start with a number.
    """
    match = _VERSION_RE.match(version.strip())
    if not match:
        raise ConfigError(f"langfuse version {version!r} is not like 4.16.0")
    return (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Everything a collector app needs; built by the CLI or by ``running_collector``.

    ``data_dir`` None keeps the received data in memory only. ``report_version`` False makes
    health answer without a version (as some proxies in front of Langfuse do).
    """

    keys: tuple[KeyPair, ...] = (KeyPair(DEFAULT_PUBLIC_KEY, DEFAULT_SECRET_KEY),)
    langfuse_version: str = DEFAULT_VERSION
    data_dir: Path | None = None
    otlp_max_bytes: int = OTLP_MAX_BYTES
    legacy_max_bytes: int = LEGACY_MAX_BYTES
    scores_max_bytes: int = SCORES_MAX_BYTES
    organization_id: str = "org-local"
    organization_name: str = "local"
    faults: FaultConfig = field(default_factory=FaultConfig)
    report_version: bool = True

    def __post_init__(self) -> None:
        parse_version(self.langfuse_version)  # refuse a bad version at construction
        if not self.keys:
            raise ConfigError("a collector needs at least one key pair")

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """The imitated version as numbers."""
        return parse_version(self.langfuse_version)

    @property
    def accepts_otlp(self) -> bool:
        """OTLP exists from Langfuse 3.22.0 on."""
        return self.version_tuple >= (3, 22, 0)

    @property
    def write_mode(self) -> WriteMode:
        """How the legacy batch endpoint treats trace and observation events."""
        major = self.version_tuple[0]
        if major >= 4:
            return "events_only"
        return "v3" if major == 3 else "v2"

    @property
    def database_path(self) -> str:
        """The SQLite file (``:memory:`` without a data dir)."""
        if self.data_dir is None:
            return ":memory:"
        return str(self.data_dir / "collector.db")

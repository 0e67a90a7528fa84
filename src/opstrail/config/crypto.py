"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a list of keys, first one encrypts.

Keys come from ``OPSTRAIL_SECRET_KEY`` (comma-separated Fernet keys) or, when that is unset,
from the key file ``<data_dir>/secret.key`` (one key per line, first one encrypts), created
with mode 0600 on first start. Older keys stay usable for decryption, so a rotation never
strands a stored secret; ``opstrail keys rotate`` puts a new key first and re-encrypts.

A ``Keyring`` is built where it is needed (server start, CLI command, resolver) and passed
down; nothing here is process-global. A keyring that reads the key file notices when another
process rotated it and reloads before giving up on a token.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from opstrail.errors import ConfigError
from opstrail.settings import Settings

KEY_FILE: Final = "secret.key"


def key_file_path(settings: Settings) -> Path:
    """Where the key file lives."""
    return settings.data_dir / KEY_FILE


def parse_keys(text: str, *, source: str) -> list[str]:
    """Split a comma- or newline-separated list of Fernet keys and check each.

    Raises:
        ConfigError: code ``invalid_secret_key`` when the list is empty or a key is not a
            32-byte url-safe base64 Fernet key (the message never repeats the key).
    """
    keys = [k.strip() for k in text.replace("\n", ",").split(",") if k.strip()]
    if not keys:
        raise ConfigError(f"{source} holds no key.", code="invalid_secret_key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ConfigError(
                f"Key {position} of {source} is not a Fernet key (32 url-safe base64 bytes; "
                "make one with `opstrail keys generate`).",
                code="invalid_secret_key",
            ) from None
    return keys


def new_key() -> str:
    """A fresh random Fernet key."""
    return Fernet.generate_key().decode("ascii")


def ensure_key_file(settings: Settings) -> Path:
    """Create the key file with one new key (mode 0600) unless it exists; return its path."""
    path = key_file_path(settings)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path  # another process created it first; use theirs
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(new_key() + "\n")
    return path


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file atomically with ``keys`` (mode 0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a keyring's keys come from: the environment or a file."""

    from_env: bool
    path: Path | None


class Keyring:
    """Encrypts with the first key, decrypts with any.

    Args:
        keys: Fernet keys, first one encrypts.
        source: where they came from (a file source is re-read after a rotation).
    """

    def __init__(self, keys: Sequence[str], source: KeySource) -> None:
        self._keys = list(keys)
        self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in self._keys])
        self.source = source
        self._mtime = _mtime(source.path)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring of a deployment: ``OPSTRAIL_SECRET_KEY``, else the key file (created
        on first use).

        Raises:
            ConfigError: a configured key is malformed.
        """
        if settings.secret_key:
            keys = parse_keys(settings.secret_key, source="OPSTRAIL_SECRET_KEY")
            return cls(keys, KeySource(from_env=True, path=None))
        path = ensure_key_file(settings)
        keys = parse_keys(path.read_text(encoding="ascii"), source=str(path))
        return cls(keys, KeySource(from_env=False, path=path))

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys, first one encrypts (for rotation only; never log them)."""
        return tuple(self._keys)

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a secret; the token is ASCII, safe to store in a text column."""
        self._reload_if_rotated()
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made with any of the keys.

        Raises:
            ConfigError: code ``secret_undecryptable`` when no key opens it (a key was lost
                or removed from ``OPSTRAIL_SECRET_KEY``).
        """
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            if self._reload_if_rotated():
                return self.decrypt(token)
            raise ConfigError(
                "A stored secret cannot be decrypted with the configured keys; was a key "
                "removed from OPSTRAIL_SECRET_KEY or the key file?",
                code="secret_undecryptable",
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the first key.

        Raises:
            ConfigError: code ``secret_undecryptable``, as ``decrypt``.
        """
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise ConfigError(
                "A stored secret cannot be decrypted with the configured keys.",
                code="secret_undecryptable",
            ) from None

    def _reload_if_rotated(self) -> bool:
        """Re-read the key file when it changed since it was read; whether it did."""
        path = self.source.path
        if path is None:
            return False
        mtime = _mtime(path)
        if mtime == self._mtime:
            return False
        keys = parse_keys(path.read_text(encoding="ascii"), source=str(path))
        self._keys = keys
        self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in keys])
        self._mtime = mtime
        return True


def _mtime(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def rotate_key_file(settings: Settings) -> Keyring:
    """Put a new key first in the key file, keeping the older ones for decryption.

    Returns:
        The keyring of the rotated file (encrypting with the new key).

    Raises:
        ConfigError: code ``keys_from_env`` when the keys come from ``OPSTRAIL_SECRET_KEY``
            (the environment must be changed instead).
    """
    if settings.secret_key:
        raise ConfigError(
            "The keys come from OPSTRAIL_SECRET_KEY; put a new key first there instead.",
            code="keys_from_env",
        )
    current = Keyring.from_settings(settings)
    path = key_file_path(settings)
    write_key_file(path, [new_key(), *current.keys])
    return Keyring.from_settings(settings)

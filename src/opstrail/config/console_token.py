"""The console API's bearer token: configured, or generated once and kept only as a hash.

``OPSTRAIL_CONSOLE_TOKEN`` wins when set. Otherwise the first start generates a random token,
prints it once on stderr, hands it back to the caller (``opstrail serve`` prints it too) and
stores only its SHA-256 in ``<data_dir>/console_token.sha256`` (mode 0600). The plaintext is
never written anywhere. To get a new token, delete that file and restart.

Several servers sharing one PostgreSQL database but not one data dir each generate their own
token; set ``OPSTRAIL_CONSOLE_TOKEN`` for such deployments.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path
from typing import Final

from opstrail.settings import Settings

TOKEN_HASH_FILE: Final = "console_token.sha256"
TOKEN_PREFIX: Final = "ops-console-"


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token, the only form in which a generated token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_hash_path(settings: Settings) -> Path:
    """Where the hash of a generated token lives."""
    return settings.data_dir / TOKEN_HASH_FILE


def ensure_console_token(settings: Settings) -> str | None:
    """Make sure a console token exists.

    Returns:
        The new plaintext token when this call generated it (print it now, it is never
        shown again); ``None`` when the token is configured or was generated before.
    """
    if settings.console_token:
        return None
    path = token_hash_path(settings)
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        # O_EXCL: two processes starting at once must not overwrite each other's token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token_digest(token) + "\n")
    print(
        f"opstrail: generated console API token (shown once, store it now): {token}",
        file=sys.stderr,
    )
    return token


def expected_digest(settings: Settings) -> str | None:
    """The SHA-256 a presented token must have, or ``None`` when no token exists yet."""
    if settings.console_token:
        return token_digest(settings.console_token)
    path = token_hash_path(settings)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return text or None


def token_matches(presented: str, digest: str) -> bool:
    """Whether ``presented`` hashes to ``digest``, compared in constant time."""
    return hmac.compare_digest(token_digest(presented), digest)

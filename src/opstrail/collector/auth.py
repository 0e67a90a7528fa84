"""Langfuse's API key check: Basic ``pk:sk`` for full access, Bearer ``pk`` for scores only."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from opstrail.collector.config import KeyPair

HOST_HINT: Final = "Confirm that you've configured the correct host."

Scope = Literal["full", "scores"]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its key pair and scope."""

    key: KeyPair
    scope: Scope

    @property
    def project_id(self) -> str | None:
        """The caller's project (None for organization keys and project-less pairs)."""
        return self.key.project_id


class AuthFailure(Exception):
    """The key check failed; ``reason`` is Langfuse's message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authenticate(header: str | None, keys: Sequence[KeyPair]) -> Caller:
    """Check an ``Authorization`` header against the configured key pairs.

    Raises:
        AuthFailure: no header, an unknown scheme, malformed Basic credentials or wrong keys.
    """
    if not header:
        raise AuthFailure(f"No authorization header. {HOST_HINT}")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthFailure(f"Invalid authorization header. {HOST_HINT}") from exc
        public_key, sep, secret_key = decoded.partition(":")
        if not sep:
            raise AuthFailure(f"Invalid authorization header. {HOST_HINT}")
        for key in keys:
            if hmac.compare_digest(key.public_key, public_key) and hmac.compare_digest(
                key.secret_key, secret_key
            ):
                return Caller(key, "full")
        raise AuthFailure(f"Invalid credentials. {HOST_HINT}")
    if scheme.lower() == "bearer":
        for key in keys:
            if hmac.compare_digest(key.public_key, value):
                return Caller(key, "scores")
        raise AuthFailure(f"Invalid public key. {HOST_HINT}")
    raise AuthFailure(f"Invalid authorization header. {HOST_HINT}")

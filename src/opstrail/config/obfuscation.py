"""How a stored secret is shown back: Dify's hint format, and the keep-unchanged rule.

A secret is shown as its first 6 characters, 12 ``*`` and its last 2 (``pk-lf-************ab``);
one of 8 characters or fewer as 20 ``*``. On update, a submitted value equal to exactly the
hint that was shown keeps the stored secret; any other value, even one containing ``*``,
replaces it (Dify kept any value with a ``*`` in it, silently dropping real secrets that hold
one).
"""

from __future__ import annotations

from typing import Final

MASK_CHAR: Final = "*"


def obfuscate(value: str) -> str:
    """The hint shown for a stored secret."""
    if not value:
        return value
    if len(value) <= 8:
        return MASK_CHAR * 20
    return value[:6] + MASK_CHAR * 12 + value[-2:]


def keeps_stored(submitted: object, stored: str) -> bool:
    """Whether a submitted value means "keep the stored secret": absent, or exactly its hint."""
    return submitted is None or submitted == obfuscate(stored)

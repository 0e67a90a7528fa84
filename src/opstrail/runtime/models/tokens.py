"""A deterministic tokenizer for the offline model and for estimates.

Words (letters, digits, underscore runs) and single punctuation marks are tokens; each CJK
character is one token, so Chinese prompts count sensibly too. It is not any vendor's
tokenizer: it only has to be stable and cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_TOKEN_RE: Final = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+|_+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text``."""
    return len(tokenize(text))


def count_message_tokens(contents: Iterable[str]) -> int:
    """Tokens of a prompt: its contents plus 3 per message for role framing (as chat
    formats add a few tokens per message)."""
    total = 0
    for content in contents:
        total += count_tokens(content) + 3
    return total

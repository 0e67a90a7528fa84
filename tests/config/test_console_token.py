"""The console token: configured, or generated once, printed once, stored only as a hash."""

from __future__ import annotations

import hashlib
import stat

import pytest

from opstrail.config.console_token import (
    ensure_console_token,
    expected_digest,
    token_hash_path,
    token_matches,
)
from opstrail.settings import Settings


def test_console_token_is_generated_once_and_stored_as_hash_when_not_configured(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """First start generates, prints (stderr) and returns a token; the file holds only its
    SHA-256 with mode 0600; later starts generate nothing."""
    unconfigured = settings.model_copy(update={"console_token": None})
    token = ensure_console_token(unconfigured)
    assert token is not None and len(token) > 30
    assert token in capsys.readouterr().err
    path = token_hash_path(unconfigured)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text().strip()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in path.read_text()
    assert ensure_console_token(unconfigured) is None
    assert capsys.readouterr().err == ""
    digest = expected_digest(unconfigured)
    assert digest is not None
    assert token_matches(token, digest)
    assert not token_matches(token + "x", digest)


def test_console_token_uses_configured_value_when_set(settings: Settings) -> None:
    """OPSTRAIL_CONSOLE_TOKEN wins: nothing is generated or written."""
    assert ensure_console_token(settings) is None
    assert not token_hash_path(settings).exists()
    digest = expected_digest(settings)
    assert digest is not None and token_matches("test-console-token", digest)

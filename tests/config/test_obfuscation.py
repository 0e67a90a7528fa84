"""Secret hints (Dify's format) and the keep-unchanged rule on update."""

from __future__ import annotations

from opstrail.config.obfuscation import keeps_stored, obfuscate


def test_obfuscate_shows_six_and_two_chars_when_long() -> None:
    """Long secrets show the first 6 and last 2 characters around 12 stars."""
    assert obfuscate("pk-lf-1234567890ab") == "pk-lf-************ab"
    assert obfuscate("123456789") == "123456" + "*" * 12 + "89"


def test_obfuscate_hides_everything_when_short() -> None:
    """Secrets of 8 characters or fewer become 20 stars; empty stays empty."""
    assert obfuscate("12345678") == "*" * 20
    assert obfuscate("a") == "*" * 20
    assert obfuscate("") == ""


def test_keeps_stored_only_when_absent_or_exact_hint() -> None:
    """Only an absent value or exactly the hint shown keeps the stored secret; a real secret
    with stars in it, or an edited hint, replaces it."""
    stored = "sk-lf-secret-value-xy"
    assert keeps_stored(None, stored)
    assert keeps_stored(obfuscate(stored), stored)
    assert not keeps_stored("sk-lf-new*secret", stored)
    assert not keeps_stored(obfuscate(stored) + "z", stored)
    assert not keeps_stored("*" * 20, stored)

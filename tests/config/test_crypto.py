"""Secrets at rest: Fernet keys from the environment or a 0600 key file, rotation."""

from __future__ import annotations

import stat

import pytest

from opstrail.config.crypto import Keyring, key_file_path, new_key, write_key_file
from opstrail.errors import ConfigError
from opstrail.settings import Settings


def test_keyring_round_trips_secret_when_key_file_used(settings: Settings) -> None:
    """A secret encrypts to an opaque token and decrypts back; the key file is created 0600."""
    keyring = Keyring.from_settings(settings)
    token = keyring.encrypt("sk-lf-very-secret")
    assert "sk-lf-very-secret" not in token
    assert keyring.decrypt(token) == "sk-lf-very-secret"
    mode = stat.S_IMODE(key_file_path(settings).stat().st_mode)
    assert mode == 0o600
    # A second keyring (another process) reads the same file.
    assert Keyring.from_settings(settings).decrypt(token) == "sk-lf-very-secret"


def test_keyring_decrypts_with_old_key_when_rotated_in_env(settings: Settings) -> None:
    """With several keys the first encrypts and every key decrypts."""
    old, new = new_key(), new_key()
    old_ring = Keyring.from_settings(settings.model_copy(update={"secret_key": old}))
    token = old_ring.encrypt("pk-lf-abc")
    both = Keyring.from_settings(settings.model_copy(update={"secret_key": f"{new}, {old}"}))
    assert both.decrypt(token) == "pk-lf-abc"
    rotated = both.rotate(token)
    assert (
        Keyring.from_settings(settings.model_copy(update={"secret_key": new})).decrypt(rotated)
        == "pk-lf-abc"
    )
    with pytest.raises(ConfigError) as caught:
        old_ring.decrypt(rotated)
    assert caught.value.code == "secret_undecryptable"


def test_keyring_reloads_key_file_when_another_process_rotated(settings: Settings) -> None:
    """A keyring notices a rotated key file and still opens tokens made with the new key."""
    running = Keyring.from_settings(settings)
    path = key_file_path(settings)
    fresh = new_key()
    write_key_file(path, [fresh, *running.keys])
    rotated_ring = Keyring.from_settings(settings)
    token = rotated_ring.encrypt("sk-lf-after-rotation")
    assert running.decrypt(token) == "sk-lf-after-rotation"


@pytest.mark.parametrize("value", ["not-a-key", "abc,", " , "])
def test_keyring_refuses_malformed_env_key_without_echoing_it(
    settings: Settings, value: str
) -> None:
    """A malformed OPSTRAIL_SECRET_KEY is a ConfigError that does not repeat the value."""
    with pytest.raises(ConfigError) as caught:
        Keyring.from_settings(settings.model_copy(update={"secret_key": value}))
    assert caught.value.code == "invalid_secret_key"
    if value.strip(" ,"):
        assert value.strip(" ,") not in caught.value.message

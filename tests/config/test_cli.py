"""`opstrail tracing ...` and `opstrail keys rotate` against a real local collector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from config.factories import GOOD_KEYS, add_app
from opstrail.cli.main import build_app
from opstrail.collector.testing import CollectorHandle, running_collector
from opstrail.config.crypto import Keyring, key_file_path, new_key
from opstrail.settings import Settings
from opstrail.storage.engine import make_engine, make_session_factory
from opstrail.storage.schema import ensure_schema
from opstrail.storage.tables.tracing import TracingProviderConfig
from opstrail.storage.tenancy import ensure_default_tenant


@pytest.fixture(name="collector", scope="module")
def _collector() -> Iterator[CollectorHandle]:
    with running_collector(keys=[GOOD_KEYS]) as handle:
        yield handle


@pytest.fixture(name="cli_env")
def _cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a CLI run on a fresh data dir, loopback-only hosts."""
    return {
        "OPSTRAIL_DATA_DIR": str(tmp_path / "data"),
        "OPSTRAIL_LOOPBACK_ONLY_HOSTS": "true",
        "OPSTRAIL_SECRET_KEY": "",
        "OPSTRAIL_DATABASE_URL": "",
    }


def _settings(env: dict[str, str]) -> Settings:
    return Settings(data_dir=Path(env["OPSTRAIL_DATA_DIR"]), loopback_only_hosts=True)


def _add_app(env: dict[str, str], name: str) -> str:
    engine = make_engine(_settings(env))
    try:
        ensure_schema(engine)
        with make_session_factory(engine)() as session:
            tenant_id, _ = ensure_default_tenant(session)
            session.commit()
            return add_app(session, tenant_id, name=name)
    finally:
        engine.dispose()


def _stored_ciphertexts(env: dict[str, str]) -> list[str]:
    engine = make_engine(_settings(env))
    try:
        with make_session_factory(engine)() as session:
            return [c.secrets_ciphertext for c in session.scalars(select(TracingProviderConfig))]
    finally:
        engine.dispose()


def _invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(build_app(), list(args), env=env)


def test_cli_tracing_set_enable_status_disable_when_keys_good(
    cli_env: dict[str, str], collector: CollectorHandle
) -> None:
    """`tracing set` by app name validates and saves and enables; `status` shows In Service;
    `disable` turns it off; wrong keys exit 1 with the code."""
    app_id = _add_app(cli_env, "Support bot")
    saved = _invoke(
        cli_env,
        "tracing",
        "set",
        "Support bot",
        "--public-key",
        GOOD_KEYS[0],
        "--secret-key",
        GOOD_KEYS[1],
        "--host",
        collector.url,
    )
    assert saved.exit_code == 0, saved.output
    assert "proj-test" in saved.output and "tracing enabled" in saved.output
    status = _invoke(cli_env, "tracing", "status", app_id)
    assert status.exit_code == 0, status.output
    assert "In Service" in status.output and "4.16.0" in status.output
    assert _invoke(cli_env, "tracing", "disable", app_id).exit_code == 0
    assert "Disabled" in _invoke(cli_env, "tracing", "status", "Support bot").output
    wrong = _invoke(
        cli_env,
        "tracing",
        "set",
        app_id,
        "--public-key",
        "pk-lf-x",
        "--secret-key",
        "sk-lf-x",
        "--host",
        collector.url,
    )
    assert wrong.exit_code == 1
    assert "unauthorized" in wrong.output
    assert GOOD_KEYS[1] not in saved.output + status.output + wrong.output


def test_cli_tracing_enable_fails_when_app_unknown_or_unconfigured(cli_env: dict[str, str]) -> None:
    """Unknown apps and enabling without a config exit 1 with a clear code."""
    _add_app(cli_env, "Lonely app")
    unknown = _invoke(cli_env, "tracing", "enable", "no-such-app")
    assert unknown.exit_code == 1 and "app_not_found" in unknown.output
    unconfigured = _invoke(cli_env, "tracing", "enable", "Lonely app")
    assert unconfigured.exit_code == 1 and "trace_config_not_exist" in unconfigured.output


def test_keys_rotate_reencrypts_every_secret_when_key_file_used(
    cli_env: dict[str, str], collector: CollectorHandle
) -> None:
    """`keys rotate` writes a new first key (file stays 0600) and re-encrypts every stored
    secret, so the new key alone opens them."""
    app_id = _add_app(cli_env, "Rotating app")
    assert (
        _invoke(
            cli_env,
            "tracing",
            "set",
            app_id,
            "--public-key",
            GOOD_KEYS[0],
            "--secret-key",
            GOOD_KEYS[1],
            "--host",
            collector.url,
        ).exit_code
        == 0
    )
    settings = _settings(cli_env)
    old_keys = Keyring.from_settings(settings).keys
    before = _stored_ciphertexts(cli_env)
    rotated = _invoke(cli_env, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert "1 configuration(s) re-encrypted" in rotated.output
    new_keys = Keyring.from_settings(settings).keys
    assert new_keys[1:] == old_keys and new_keys[0] not in old_keys
    assert key_file_path(settings).stat().st_mode & 0o777 == 0o600
    after = _stored_ciphertexts(cli_env)
    assert after != before
    only_new = Keyring.from_settings(settings.model_copy(update={"secret_key": new_keys[0]}))
    assert json.loads(only_new.decrypt(after[0])) == {
        "public_key": GOOD_KEYS[0],
        "secret_key": GOOD_KEYS[1],
    }


def test_keys_rotate_prints_value_to_set_when_keys_from_env(cli_env: dict[str, str]) -> None:
    """With OPSTRAIL_SECRET_KEY set, rotate prints the new list (new key first) and changes
    nothing on disk."""
    current = new_key()
    env = {**cli_env, "OPSTRAIL_SECRET_KEY": current}
    result = _invoke(env, "keys", "rotate")
    assert result.exit_code == 0, result.output
    line = next(li for li in result.output.splitlines() if li.startswith("OPSTRAIL_SECRET_KEY="))
    keys = line.removeprefix("OPSTRAIL_SECRET_KEY=").split(",")
    assert len(keys) == 2 and keys[1] == current
    assert not key_file_path(_settings(env)).exists()

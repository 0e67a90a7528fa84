"""``opstrail keys rotate|reencrypt|generate``: the Fernet keys that encrypt stored secrets."""

from __future__ import annotations

import typer
from rich.console import Console

from opstrail.cli.session import open_session
from opstrail.config.crypto import Keyring, new_key, rotate_key_file
from opstrail.errors import OpstrailError
from opstrail.services.tracing_settings import reencrypt_secrets
from opstrail.settings import Settings


def _reencrypt(settings: Settings, keyring: Keyring) -> int:
    with open_session(settings) as session:
        return reencrypt_secrets(session, keyring)


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="Keys that encrypt stored secrets.", no_args_is_help=True)

    @keys.command("rotate")
    def rotate(ctx: typer.Context) -> None:
        """Put a new key first in the key file and re-encrypt every stored secret with it.

        Older keys stay in the file so nothing becomes unreadable. When the keys come from
        OPSTRAIL_SECRET_KEY, print the value to set instead, then run `opstrail keys reencrypt`.
        """
        settings: Settings = ctx.obj
        err = Console(stderr=True)
        if settings.secret_key:
            current = [k.strip() for k in settings.secret_key.split(",") if k.strip()]
            value = ",".join([new_key(), *current])
            typer.echo("The keys come from OPSTRAIL_SECRET_KEY. Set it to (new key first):")
            typer.echo(f"OPSTRAIL_SECRET_KEY={value}")
            typer.echo("restart the servers and workers, then run `opstrail keys reencrypt`.")
            return
        try:
            keyring = rotate_key_file(settings)
            count = _reencrypt(settings, keyring)
        except OpstrailError as exc:
            err.print(f"[red]error[/red] ({exc.code}): {exc.message}", highlight=False)
            raise typer.Exit(1) from None
        typer.echo(
            f"new key written first to {keyring.source.path}; {count} configuration(s) "
            "re-encrypted. Older keys stay in the file for decryption."
        )

    @keys.command("reencrypt")
    def reencrypt(ctx: typer.Context) -> None:
        """Re-encrypt every stored secret with the current first key."""
        settings: Settings = ctx.obj
        try:
            count = _reencrypt(settings, Keyring.from_settings(settings))
        except OpstrailError as exc:
            Console(stderr=True).print(
                f"[red]error[/red] ({exc.code}): {exc.message}", highlight=False
            )
            raise typer.Exit(1) from None
        typer.echo(f"{count} configuration(s) re-encrypted with the first key.")

    @keys.command("generate")
    def generate() -> None:
        """Print a new random Fernet key (for OPSTRAIL_SECRET_KEY)."""
        typer.echo(new_key())

    app.add_typer(keys, name="keys")

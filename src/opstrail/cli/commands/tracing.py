"""``opstrail tracing set|enable|disable|status|policy|remove APP``: an app's Langfuse tracing.

APP is an app id or a unique app name. ``set`` validates the keys against the host before
saving (the same checks as the console API) and stores them encrypted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from opstrail.cli.session import open_session
from opstrail.config.crypto import Keyring
from opstrail.config.tracing_config import find_app_by_ref
from opstrail.errors import OpstrailError
from opstrail.services import tracing_settings as svc
from opstrail.settings import Settings

T = TypeVar("T")

STATE_LABELS = {
    "not_configured": ("Not configured", "grey50"),
    "disabled": ("Disabled", "grey50"),
    "started": ("In Service", "green"),
    "unauthorized": ("Keys refused (unauthorized)", "red"),
    "unreachable": ("Host unreachable", "red"),
    "error": ("Error", "red"),
}


def _run(action: Callable[[], T]) -> T:
    """Run a use case; an opstrail error becomes a one-line message and exit code 1."""
    try:
        return action()
    except OpstrailError as exc:
        Console(stderr=True).print(f"[red]error[/red] ({exc.code}): {exc.message}", highlight=False)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    tracing = typer.Typer(help="Per-app tracing to Langfuse.", no_args_is_help=True)

    @tracing.command("set")
    def set_config(
        ctx: typer.Context,
        app_ref: str = typer.Argument(..., metavar="APP", help="App id or unique name."),
        public_key: str = typer.Option(
            ..., "--public-key", help="Langfuse public key (pk-lf-...)."
        ),
        secret_key: str = typer.Option(
            ...,
            "--secret-key",
            prompt=True,
            hide_input=True,
            help="Langfuse secret key (sk-lf-...).",
        ),
        host: str = typer.Option("https://cloud.langfuse.com", "--host", help="Langfuse host URL."),
        enable: bool = typer.Option(
            True, "--enable/--no-enable", help="Turn tracing on after saving."
        ),
    ) -> None:
        """Validate and save the app's Langfuse keys (creates or replaces the configuration)."""
        settings: Settings = ctx.obj
        keyring = _run(lambda: Keyring.from_settings(settings))
        values = {"public_key": public_key, "secret_key": secret_key, "host": host}
        with open_session(settings) as session:
            app_id = _run(lambda: find_app_by_ref(session, app_ref).id)
            exists = svc.get_config(
                session, keyring, tenant_id=None, app_id=app_id, provider="langfuse"
            )
            if exists is None:
                view = _run(
                    lambda: svc.create_config(
                        session,
                        settings,
                        keyring,
                        tenant_id=None,
                        app_id=app_id,
                        provider="langfuse",
                        values=values,
                    )
                )
            else:
                view = _run(
                    lambda: svc.update_config(
                        session,
                        settings,
                        keyring,
                        tenant_id=None,
                        app_id=app_id,
                        provider="langfuse",
                        values=values,
                    )
                )
            if enable:
                _run(
                    lambda: svc.set_switch(
                        session, tenant_id=None, app_id=app_id, enabled=True, provider="langfuse"
                    )
                )
        console = Console()
        console.print(
            f"[green]saved[/green] Langfuse project [bold]{view.project.project_name}[/bold] "
            f"({view.project.project_id}) on {view.settings.get('host')}, "
            f"server {view.project.server_version or 'version unknown'}, "
            f"path {view.project.ingestion_path}" + (", tracing enabled" if enable else ""),
            highlight=False,
        )
        if view.project.warning:
            console.print(f"[yellow]warning[/yellow]: {view.project.warning}", highlight=False)

    def _switch(ctx: typer.Context, app_ref: str, enabled: bool) -> None:
        settings: Settings = ctx.obj
        with open_session(settings) as session:
            app_id = _run(lambda: find_app_by_ref(session, app_ref).id)
            switch = _run(
                lambda: svc.set_switch(
                    session, tenant_id=None, app_id=app_id, enabled=enabled, provider=None
                )
            )
        word = "enabled" if switch.enabled else "disabled"
        typer.echo(
            f"tracing {word} for {app_id}" + (f" ({switch.provider})" if switch.provider else "")
        )

    @tracing.command("enable")
    def enable_cmd(
        ctx: typer.Context,
        app_ref: str = typer.Argument(..., metavar="APP", help="App id or unique name."),
    ) -> None:
        """Turn tracing on (needs a saved configuration)."""
        _switch(ctx, app_ref, True)

    @tracing.command("disable")
    def disable_cmd(
        ctx: typer.Context,
        app_ref: str = typer.Argument(..., metavar="APP", help="App id or unique name."),
    ) -> None:
        """Turn tracing off (runs are still recorded, unrouted, for `opstrail export`)."""
        _switch(ctx, app_ref, False)

    @tracing.command("status")
    def status_cmd(
        ctx: typer.Context,
        app_ref: str = typer.Argument(..., metavar="APP", help="App id or unique name."),
    ) -> None:
        """Show the app's tracing state, destination and delivery counts."""
        settings: Settings = ctx.obj
        with open_session(settings) as session:
            app = _run(lambda: find_app_by_ref(session, app_ref))
            status = _run(lambda: svc.tracing_status(session, tenant_id=None, app_id=app.id))
            policy = svc.get_policy(session, tenant_id=None, app_id=app.id)
            app_name = app.name
        label, colour = STATE_LABELS[status.state]
        table = Table(title=f"Tracing of {app_name} ({status.app_id})", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        table.add_row("State", f"[{colour}]{label}[/{colour}]")
        table.add_row("Provider", status.provider or "-")
        table.add_row("Project", status.project_url or "-")
        table.add_row(
            "Server", f"{status.server_version or 'unknown'} via {status.ingestion_path or '-'}"
        )
        if status.server_warning:
            table.add_row("Warning", f"[yellow]{status.server_warning}[/yellow]")
        table.add_row(
            "Traces",
            f"{status.delivered} delivered, {status.pending} pending, "
            f"{status.retrying} retrying, {status.dead} dead",
        )
        table.add_row(
            "Last success", status.last_success_at.isoformat() if status.last_success_at else "-"
        )
        if status.last_error_code or status.last_error_message:
            table.add_row(
                "Last error",
                f"[red]{status.last_error_code}[/red]: {status.last_error_message or ''}",
            )
        table.add_row("Content", f"{policy.mode}, sampling {policy.sample_rate:g}")
        Console().print(table)

    @tracing.command("policy")
    def policy_cmd(
        ctx: typer.Context,
        app_ref: str = typer.Argument(..., metavar="APP", help="App id or unique name."),
        mode: str | None = typer.Option(None, "--mode", help="full, masked or metadata-only."),
        sample_rate: float | None = typer.Option(None, "--sample-rate", help="0.0 to 1.0."),
        mask_pattern: list[str] | None = typer.Option(
            None, "--mask-pattern", help="Regex to mask (repeat; replaces the defaults)."
        ),
    ) -> None:
        """Set the app's content policy and sampling rate (omitted options keep their value)."""
        settings: Settings = ctx.obj
        change = svc.PolicyInput(
            content_mode=mode, mask_patterns=mask_pattern or None, sample_rate=sample_rate
        )
        with open_session(settings) as session:
            app_id = _run(lambda: find_app_by_ref(session, app_ref).id)
            policy = _run(
                lambda: svc.set_policy(session, tenant_id=None, app_id=app_id, change=change)
            )
        typer.echo(
            f"content {policy.mode}, sampling {policy.sample_rate:g}, {len(policy.mask_patterns)} mask pattern(s)"
        )

    @tracing.command("remove")
    def remove_cmd(
        ctx: typer.Context,
        app_ref: str = typer.Argument(..., metavar="APP", help="App id or unique name."),
    ) -> None:
        """Remove the app's Langfuse configuration (turns tracing off, cancels pending rows)."""
        settings: Settings = ctx.obj
        with open_session(settings) as session:
            app_id = _run(lambda: find_app_by_ref(session, app_ref).id)
            result = _run(
                lambda: svc.delete_config(
                    session, tenant_id=None, app_id=app_id, provider="langfuse"
                )
            )
        typer.echo(
            f"removed; tracing {'turned off' if result.disabled else 'was off'}, {result.cancelled_rows} pending trace(s) cancelled"
        )

    app.add_typer(tracing, name="tracing")

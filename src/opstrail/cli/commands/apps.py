"""``opstrail apps import FILE`` / ``apps list`` / ``apps key APP_ID``."""

from __future__ import annotations

from pathlib import Path

import typer

from opstrail.settings import Settings


def register(app: typer.Typer) -> None:
    apps = typer.Typer(help="Chat, agent, completion and workflow apps (Dify DSL).",
                       no_args_is_help=True)
    app.add_typer(apps, name="apps")

    @apps.command("import")
    def import_(
        ctx: typer.Context,
        file: Path = typer.Argument(..., help="A Dify DSL YAML file."),
        dataset: list[str] = typer.Option(
            [], "--dataset", help="Map a DSL dataset id to a local one: DSL_ID=LOCAL_ID (repeatable)."
        ),
        api_key: bool = typer.Option(False, "--api-key", help="Also create a service API key."),
    ) -> None:
        """Import an app from a DSL file and print its id (and warnings)."""
        from opstrail.cli.session import open_session
        from opstrail.errors import OpstrailError
        from opstrail.services.apps import create_api_key, import_app
        from opstrail.storage.tenancy import ensure_default_tenant

        settings: Settings = ctx.obj
        try:
            content = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"error: cannot read {file}: {exc}", err=True)
            raise typer.Exit(2) from exc
        mapping: dict[str, str] = {}
        for item in dataset:
            dsl_id, sep, local_id = item.partition("=")
            if not sep or not dsl_id or not local_id:
                typer.echo(f"error: --dataset must be DSL_ID=LOCAL_ID, got {item!r}", err=True)
                raise typer.Exit(2)
            mapping[dsl_id] = local_id
        with open_session(settings) as session:
            tenant_id, account_id = ensure_default_tenant(session)
            session.commit()
            try:
                result = import_app(session, settings, yaml_content=content, tenant_id=tenant_id,
                                    account_id=account_id, dataset_map=mapping)
            except OpstrailError as exc:
                typer.echo(f"error: {exc.message}", err=True)
                raise typer.Exit(1) from exc
            typer.echo(f"{result.status}: app {result.app_id} ({result.app_mode}) {result.app_name}")
            for warning in result.warnings:
                typer.echo(f"warning: {warning}")
            if api_key:
                typer.echo(f"api key: {create_api_key(session, result.app_id)}")

    @apps.command("list")
    def list_(ctx: typer.Context) -> None:
        """List the apps: id, mode, name."""
        from opstrail.cli.session import open_session
        from opstrail.services.apps import list_apps
        from opstrail.storage.tenancy import ensure_default_tenant

        settings: Settings = ctx.obj
        with open_session(settings) as session:
            tenant_id, _account = ensure_default_tenant(session)
            session.commit()
            for row in list_apps(session, tenant_id=tenant_id):
                typer.echo(f"{row.id}\t{row.mode}\t{row.name}")

    @apps.command("key")
    def key(ctx: typer.Context, app_id: str = typer.Argument(...)) -> None:
        """Create a service API key (app-...) for an app; it is printed once."""
        from opstrail.cli.session import open_session
        from opstrail.errors import OpstrailError
        from opstrail.services.apps import create_api_key

        settings: Settings = ctx.obj
        with open_session(settings) as session:
            try:
                typer.echo(create_api_key(session, app_id))
            except OpstrailError as exc:
                typer.echo(f"error: {exc.message}", err=True)
                raise typer.Exit(1) from exc

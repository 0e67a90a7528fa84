"""``opstrail serve``: the service API, console API, web console and (by default) the
embedded dispatcher in one process."""

from __future__ import annotations

import typer

from opstrail.settings import Settings


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(5001, help="Port to listen on."),
        no_dispatcher: bool = typer.Option(
            False, "--no-dispatcher", help="Do not deliver traces here; run `opstrail worker`."
        ),
        log_level: str = typer.Option("info", help="debug, info, warning or error."),
    ) -> None:
        """Serve the service API (/v1), the console API and pages (/console), /metrics,
        /healthz and /readyz."""
        import uvicorn

        from opstrail.api.app import create_app
        from opstrail.cli.logs import configure_logging

        settings: Settings = ctx.obj
        if no_dispatcher:
            settings = settings.model_copy(update={"embedded_dispatcher": False})
        configure_logging(json_output=settings.log_json)
        from opstrail.config.console_token import ensure_console_token

        token = ensure_console_token(settings)
        if token:
            typer.secho(
                f"Console token (shown once, keep it): {token}", fg=typer.colors.GREEN, err=True
            )
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            log_config=None,
            timeout_graceful_shutdown=10,
        )

"""``opstrail export``: re-send an app's stored traces to its current Langfuse destination."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from opstrail.settings import Settings


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{name}: not an ISO date or datetime: {value!r}") from exc
    # A bare date or a time without zone is read as UTC (the only zone opstrail stores).
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        ctx: typer.Context,
        app_id: str = typer.Option(..., "--app", help="The app whose traces to re-send."),
        since: str | None = typer.Option(None, help="Only traces recorded from this date (UTC)."),
        until: str | None = typer.Option(None, help="Only traces recorded before this date (UTC)."),
        force: bool = typer.Option(
            False, "--force", help="Also re-send traces the destination already acknowledged."
        ),
        wait: bool = typer.Option(
            True, "--wait/--no-wait", help="Wait for delivery, with a progress bar."
        ),
    ) -> None:
        """Queue stored traces the app's current destination has not acknowledged, and deliver
        them. --force also re-sends acknowledged ones, with a warning: Langfuse v4 keeps
        duplicates."""
        import time

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from opstrail.delivery.worker import DispatcherThread
        from opstrail.errors import DeliveryError, OpstrailError
        from opstrail.services.bootstrap import build_dispatcher
        from opstrail.services.export import export_progress, start_export
        from opstrail.storage.engine import make_engine, make_session_factory
        from opstrail.storage.schema import ensure_schema

        settings: Settings = ctx.obj
        console = Console(stderr=True)
        engine = make_engine(settings)
        try:
            ensure_schema(engine)
            sessions = make_session_factory(engine)
            try:
                with sessions() as session:
                    plan = start_export(
                        session, settings, app_id=app_id, since=_when(since, "--since"),
                        until=_when(until, "--until"), force=force,
                    )
            except OpstrailError as exc:
                console.print(f"[red]opstrail export: {exc}[/red]")
                raise typer.Exit(2) from exc
            if plan.warning:
                console.print(f"[yellow]warning: {plan.warning}[/yellow]")
            console.print(
                f"{len(plan.row_ids)} trace(s) queued for {plan.destination_key}; "
                f"{plan.skipped_acknowledged} already acknowledged there, "
                f"{plan.waiting} already waiting."
            )
            if not wait or not plan.row_ids:
                raise typer.Exit(0)
            runner: DispatcherThread | None = DispatcherThread(build_dispatcher(settings, sessions))
            try:
                assert runner is not None
                runner.start()
            except DeliveryError:
                runner = None  # the server's dispatcher holds the SQLite lease: it delivers
                console.print("The running server's dispatcher delivers them.")
            try:
                with Progress(
                    TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[dead]} dead"), console=console,
                ) as bar:
                    task = bar.add_task("export", total=len(plan.row_ids), dead=0)
                    while True:
                        with sessions() as session:
                            progress = export_progress(session, plan.row_ids)
                        bar.update(
                            task, completed=progress.delivered + progress.dead, dead=progress.dead
                        )
                        if progress.finished:
                            break
                        time.sleep(0.25)
            finally:
                if runner is not None:
                    runner.stop()
        finally:
            engine.dispose()
        if progress.dead:
            console.print(
                f"[red]{progress.dead} trace(s) could not be delivered; "
                "see `opstrail tracing status`.[/red]"
            )
            raise typer.Exit(1)
        console.print(f"[green]{progress.delivered} trace(s) delivered.[/green]")

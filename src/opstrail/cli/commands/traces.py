"""``opstrail traces list|show``: what the local collector received, in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from opstrail.settings import Settings

if TYPE_CHECKING:
    from opstrail.collector.reading import CollectorReader


def _reader(settings: Settings, data_dir: Path | None) -> CollectorReader:
    from opstrail.cli.commands.collector import default_collector_dir
    from opstrail.collector.reading import CollectorReader
    from opstrail.collector.store import CollectorStore

    directory = data_dir or default_collector_dir(settings)
    database = directory / "collector.db"
    if not database.exists():
        typer.echo(f"no collector data in {directory} (run `opstrail collector` first)", err=True)
        raise typer.Exit(1)
    return CollectorReader(CollectorStore(database))


def register(app: typer.Typer) -> None:
    traces_app = typer.Typer(
        help="Show traces received by the local collector.", no_args_is_help=True
    )
    app.add_typer(traces_app, name="traces")

    data_dir_option = typer.Option(
        None, "--data-dir", help="The collector's directory [default: <data dir>/collector]."
    )

    @traces_app.command("list")
    def list_traces(
        ctx: typer.Context,
        data_dir: Path | None = data_dir_option,
        limit: int = typer.Option(20, min=1, help="Newest N traces."),
        project: str | None = typer.Option(None, help="Only this project id."),
    ) -> None:
        """List received traces, newest first."""
        from rich.console import Console

        from opstrail.collector.views import traces_table

        reader = _reader(ctx.obj, data_dir)
        traces = reader.traces(project_id=project)
        traces.sort(key=lambda t: t.get("timestamp") or "", reverse=True)
        Console().print(
            traces_table(traces[:limit], title=f"Received traces ({len(traces)} in total)")
        )

    @traces_app.command("show")
    def show_trace(
        ctx: typer.Context,
        trace_id: str = typer.Argument(..., help="The 32-hex trace id."),
        data_dir: Path | None = data_dir_option,
        project: str | None = typer.Option(None, help="Only this project id."),
    ) -> None:
        """Draw one trace's observation tree."""
        from rich.console import Console

        from opstrail.collector.views import trace_tree

        reader = _reader(ctx.obj, data_dir)
        trace = reader.trace(trace_id, project_id=project)
        if trace is None:
            typer.echo(f"trace {trace_id} not found", err=True)
            raise typer.Exit(1)
        Console().print(trace_tree(trace))

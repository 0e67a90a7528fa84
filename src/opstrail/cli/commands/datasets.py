"""``opstrail datasets create NAME --from DIR [--id UUID]`` and ``datasets list``."""

from __future__ import annotations

from pathlib import Path

import typer

from opstrail.settings import Settings


def register(app: typer.Typer) -> None:
    datasets = typer.Typer(help="Local knowledge bases for retrieval.", no_args_is_help=True)
    app.add_typer(datasets, name="datasets")

    @datasets.command("create")
    def create(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Dataset name."),
        source: Path = typer.Option(..., "--from", help="Directory of txt, md and pdf files."),
        dataset_id: str | None = typer.Option(
            None, "--id", help="Use this UUID (e.g. the id an app's DSL refers to)."
        ),
    ) -> None:
        """Chunk and index every txt/md/pdf file of a directory as a new dataset."""
        from opstrail.cli.session import open_session
        from opstrail.errors import OpstrailError
        from opstrail.services.datasets import create_dataset_from_dir
        from opstrail.storage.tenancy import ensure_default_tenant

        settings: Settings = ctx.obj
        with open_session(settings) as session:
            tenant_id, _account = ensure_default_tenant(session)
            session.commit()
            try:
                summary = create_dataset_from_dir(session, tenant_id=tenant_id, name=name,
                                                  directory=source, dataset_id=dataset_id)
            except OpstrailError as exc:
                typer.echo(f"error: {exc.message}", err=True)
                raise typer.Exit(1) from exc
        typer.echo(f"dataset {summary.id} ({summary.name}): {summary.documents} documents, "
                   f"{summary.chunks} chunks")
        for skipped in summary.skipped:
            typer.echo(f"skipped: {skipped}")

    @datasets.command("list")
    def list_(ctx: typer.Context) -> None:
        """List datasets: id and name."""
        from opstrail.cli.session import open_session
        from opstrail.storage.repos.datasets import list_datasets
        from opstrail.storage.tenancy import ensure_default_tenant

        settings: Settings = ctx.obj
        with open_session(settings) as session:
            tenant_id, _account = ensure_default_tenant(session)
            session.commit()
            for row in list_datasets(session, tenant_id=tenant_id):
                typer.echo(f"{row.id}\t{row.name}")

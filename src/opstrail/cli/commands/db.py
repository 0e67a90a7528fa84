"""``opstrail db upgrade``: bring the database schema to the newest migration."""

from __future__ import annotations

import typer

from opstrail.settings import Settings


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database schema.", no_args_is_help=True)

    @db.command("upgrade")
    def upgrade(ctx: typer.Context) -> None:
        """Apply every pending Alembic migration (SQLite or PostgreSQL)."""
        from opstrail.storage.engine import make_engine
        from opstrail.storage.schema import ensure_schema

        settings: Settings = ctx.obj
        engine = make_engine(settings)
        try:
            ensure_schema(engine)
        finally:
            engine.dispose()
        typer.echo(f"database is up to date ({engine.url.render_as_string(hide_password=True)})")

    app.add_typer(db, name="db")

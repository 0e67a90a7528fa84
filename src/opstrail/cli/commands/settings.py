"""``opstrail settings``: the effective settings, or the table of every setting."""

from __future__ import annotations

import typer

from opstrail.settings import Settings

_SECRET_FIELDS = {"secret_key", "console_token", "database_url"}


def settings_table_markdown() -> str:
    """The Markdown table of every ``OPSTRAIL_*`` setting with its default and meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = ".opstrail" if name == "data_dir" else field.default
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `OPSTRAIL_{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("settings")
    def show_settings(
        ctx: typer.Context,
        markdown: bool = typer.Option(False, help="Print the documentation table instead."),
    ) -> None:
        """Print the effective settings (secrets hidden)."""
        if markdown:
            typer.echo(settings_table_markdown())
            return
        settings: Settings = ctx.obj
        for name in Settings.model_fields:
            value = getattr(settings, name)
            if name in _SECRET_FIELDS and value:
                value = "(set, hidden)"
            typer.echo(f"OPSTRAIL_{name.upper()}={value}")
        typer.echo(f"# database in use: {'sqlite' if settings.is_sqlite else 'postgresql'}")

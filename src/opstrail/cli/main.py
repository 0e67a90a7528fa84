"""``opstrail`` entry point.

Commands are discovered: every module of ``opstrail.cli.commands`` defines
``register(app: typer.Typer) -> None`` and adds its commands or sub-apps there. Settings are
built once in the callback and handed to commands through ``ctx.obj``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from opstrail import __version__
from opstrail.cli import commands
from opstrail.settings import Settings


def build_app() -> typer.Typer:
    """The Typer application with every command registered."""
    app = typer.Typer(
        name="opstrail",
        help="Run LLM apps and trace every run into Langfuse.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
    )

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Settings()

    @app.command("version")
    def _version() -> None:
        """Print the opstrail version."""
        typer.echo(__version__)

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)
    return app


def main() -> None:
    """Run the CLI."""
    build_app()()

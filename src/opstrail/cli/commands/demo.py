"""``opstrail demo``: the main job on the embedded defaults, in one command."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        data_dir: Path | None = typer.Option(
            None, help="Keep the demo's database here (default: a temporary directory)."
        ),
        quick: bool = typer.Option(False, help="A reduced script (used by `make test`)."),
        use_env_langfuse: bool = typer.Option(
            True,
            "--env-langfuse/--no-env-langfuse",
            help="Send to LANGFUSE_HOST with LANGFUSE_PUBLIC_KEY/SECRET_KEY when they are set.",
        ),
    ) -> None:
        """Import the example apps, run messages and workflows over HTTP, deliver every trace
        to a local Langfuse-compatible collector (or your Langfuse), print the trees and check
        them. Exits 0 only if every trace was delivered and valid."""
        from rich.console import Console

        from opstrail.cli.demo.runner import run_demo
        from opstrail.cli.demo.script import DemoFailure

        console = Console()
        try:
            code = run_demo(
                data_dir=data_dir, quick=quick, use_env_langfuse=use_env_langfuse, console=console
            )
        except DemoFailure as exc:
            console.print(f"[red]demo failed:[/] {exc}")
            raise typer.Exit(1) from exc
        raise typer.Exit(code)

"""``opstrail collector``: run the local Langfuse-compatible receiver."""

from __future__ import annotations

from pathlib import Path

import typer

from opstrail.settings import Settings


def default_collector_dir(settings: Settings) -> Path:
    """Where the collector keeps its SQLite file unless ``--data-dir`` says otherwise."""
    return settings.data_dir / "collector"


def register(app: typer.Typer) -> None:
    @app.command("collector")
    def collector(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(3000, help="Port to listen on (0 picks a free one)."),
        langfuse_version: str = typer.Option(
            "4.16.0", help="Langfuse version to imitate: 4.x OTLP, 3.x both, 2.x legacy only."
        ),
        data_dir: Path | None = typer.Option(
            None, help="Directory of the collector's SQLite file [default: <data dir>/collector]."
        ),
        keys: list[str] = typer.Option(
            [],
            "--keys",
            help="Key pair pk:sk[:project] (repeatable); pk:sk: has no project, "
            "pk:sk:!org is an organization key. Default pk-lf-local:sk-lf-local:local.",
        ),
        keys_file: Path | None = typer.Option(None, help="File with one pk:sk[:project] a line."),
        otlp_max_mb: float = typer.Option(5.0, help="OTLP request size limit in MB (413 above)."),
        error_rate: float = typer.Option(0.0, help="Fault: fraction of write requests failing."),
        error_status: int = typer.Option(503, help="Fault: status of those failures."),
        fail_next: int = typer.Option(0, help="Fault: the first N write requests fail."),
        fail_status: int = typer.Option(503, help="Fault: status for --fail-next."),
        retry_after: float = typer.Option(1.0, help="Fault: Retry-After seconds on 429."),
        partial_error_rate: float = typer.Option(
            0.0, help="Fault: fraction of legacy events answered with a per-event 500."
        ),
        latency: float = typer.Option(0.0, help="Fault: seconds added to each write request."),
        accept_only: bool = typer.Option(
            False, "--accept-only", help="Authenticate and parse, store nothing (benchmarks)."
        ),
        log_level: str = typer.Option("warning", help="uvicorn log level."),
    ) -> None:
        """Run a local Langfuse-compatible receiver (OTLP, legacy batch, scores, read API)."""
        from rich.console import Console
        from rich.table import Table

        from opstrail.collector.app import create_collector_app
        from opstrail.collector.config import MB, CollectorConfig, KeyPair, read_keys_file
        from opstrail.collector.faults import FaultConfig
        from opstrail.collector.server import CollectorServer
        from opstrail.errors import OpstrailError

        settings: Settings = ctx.obj
        console = Console()
        try:
            pairs = [KeyPair.parse(spec) for spec in keys]
            if keys_file is not None:
                pairs.extend(read_keys_file(keys_file))
            faults = FaultConfig(
                error_rate=error_rate,
                error_status=error_status,
                fail_next=fail_next,
                fail_status=fail_status,
                retry_after_seconds=retry_after,
                partial_error_rate=partial_error_rate,
                latency_seconds=latency,
                accept_only=accept_only,
            )
            directory = data_dir or default_collector_dir(settings)
            config = CollectorConfig(
                keys=tuple(pairs) or CollectorConfig().keys,
                langfuse_version=langfuse_version,
                data_dir=directory,
                otlp_max_bytes=int(otlp_max_mb * MB),
                faults=faults,
            )
            server = CollectorServer(
                create_collector_app(config),
                host=host,
                port=port,
                log_level=log_level,
                access_log=log_level in ("info", "debug", "trace"),
            )
        except (OpstrailError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        table = Table(title=f"Langfuse-compatible collector (imitating {langfuse_version})")
        for column in ("public key", "secret key", "project"):
            table.add_column(column)
        for pair in config.keys:
            project = (
                "(organization key)"
                if pair.organization_key
                else (pair.project_id or "(no project)")
            )
            table.add_row(pair.public_key, pair.secret_key, project)
        console.print(table)
        console.print(f"URL:  [bold]{server.url}[/bold]   data: {config.database_path}")
        first = config.keys[0]
        console.print(
            f"LANGFUSE_HOST={server.url} LANGFUSE_PUBLIC_KEY={first.public_key} "
            f"LANGFUSE_SECRET_KEY={first.secret_key}"
        )
        if faults != FaultConfig():
            console.print(f"[yellow]faults:[/yellow] {faults.to_dict()}")
        server.run()

"""``opstrail worker``: deliver outbox rows to Langfuse in a process of its own.

On PostgreSQL any number of workers share the outbox (rows are claimed ``FOR UPDATE SKIP
LOCKED``). On SQLite a worker runs only while it holds the single dispatcher lease, so start the
server with ``--no-dispatcher``. SIGTERM stops it within ``--grace`` seconds: the request in
flight finishes or its rows are released.
"""

from __future__ import annotations

import typer

from opstrail.settings import Settings


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        ctx: typer.Context,
        batch_size: int | None = typer.Option(
            None, min=1, max=10_000, help="Rows per batch (default: OPSTRAIL_DISPATCH_BATCH_SIZE)."
        ),
        lease_seconds: float | None = typer.Option(
            None, min=1, help="Lease of claimed rows, seconds (default: OPSTRAIL_DISPATCH_LEASE_SECONDS)."
        ),
        retry_base: float = typer.Option(1.0, min=0.01, help="First retry delay, seconds."),
        retry_cap: float = typer.Option(300.0, min=0.01, help="Longest retry delay, seconds."),
        grace: float = typer.Option(10.0, min=0, help="Seconds to finish the batch at SIGTERM."),
        drain: bool = typer.Option(
            False, "--drain", help="Exit once nothing is due (backfills, benchmarks)."
        ),
        metrics_port: int | None = typer.Option(
            None, min=1, max=65535, help="Serve this worker's /metrics on 127.0.0.1:PORT."
        ),
        log_level: str = typer.Option("info", help="debug, info, warning or error."),
    ) -> None:
        """Deliver traces from the outbox until SIGTERM (or, with --drain, until none is due)."""
        import logging

        from rich.console import Console

        from opstrail.cli.logs import configure_logging
        from opstrail.delivery.policy import RetrySchedule
        from opstrail.delivery.worker import run_in_foreground
        from opstrail.errors import DeliveryError
        from opstrail.services.bootstrap import build_dispatcher, dispatch_options
        from opstrail.storage.engine import make_engine, make_session_factory
        from opstrail.storage.schema import ensure_schema

        settings: Settings = ctx.obj
        configure_logging(json_output=settings.log_json)
        logging.getLogger("opstrail").setLevel(log_level.upper())
        err = Console(stderr=True)
        if retry_cap < retry_base:
            raise typer.BadParameter("--retry-cap must be at least --retry-base")
        overrides: dict[str, object] = {"schedule": RetrySchedule(retry_base, retry_cap)}
        if batch_size is not None:
            overrides["batch_size"] = batch_size
        if lease_seconds is not None:
            overrides["lease_seconds"] = lease_seconds
        engine = make_engine(settings)
        try:
            ensure_schema(engine)
            session_factory = make_session_factory(engine)
            metrics = None
            if metrics_port is not None:
                from prometheus_client import start_http_server

                from opstrail.delivery.metrics import DeliveryMetrics
                from opstrail.services.bootstrap import metrics_registry

                registry = metrics_registry(session_factory)
                metrics = DeliveryMetrics(registry)
                start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
            dispatcher = build_dispatcher(
                settings,
                session_factory,
                metrics=metrics,
                options=dispatch_options(settings, **overrides),
            )
            try:
                code = _drain(dispatcher) if drain else run_in_foreground(dispatcher, grace=grace)
            except DeliveryError as exc:
                err.print(f"[red]opstrail worker: {exc}[/red]")
                raise typer.Exit(2) from exc
        finally:
            engine.dispose()
        raise typer.Exit(code)


def _drain(dispatcher: object) -> int:
    from opstrail.delivery.dispatcher import Dispatcher

    assert isinstance(dispatcher, Dispatcher)
    dispatcher.acquire_single_lease()
    try:
        while True:
            dispatcher.renew_single_lease()
            if not dispatcher.run_once():
                break
    finally:
        dispatcher.close()
    return 0

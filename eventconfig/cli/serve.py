"""``eventconfig serve``: run the config service until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, run
from eventconfig.service import ConfigService
from eventconfig.settings import Settings


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port (0: off).")
@click.option("--max-value-bytes", type=int, help="Largest value a put may store (default 512 KiB).")
@click.option("--max-items", "max_items_per_request", type=int, help="Most items in one request (default 10000).")
@click.option("--min-version-wait-ms", type=int, help="How long a min_version read may wait (default 5000).")
@click.pass_context
def serve(ctx: click.Context, **options: int | None) -> None:
    """Run the writer and the materialized view; several processes form an active/standby set."""
    from eventconfig.cli.main import load_settings

    run(_serve(load_settings(ctx, **options)))


async def _serve(settings: Settings) -> None:
    service = ConfigService(settings)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await service.start()
    waiter = asyncio.create_task(service.wait())
    stopper = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()
        await service.stop()
    if waiter.done() and not waiter.cancelled() and waiter.exception():
        raise waiter.exception()  # type: ignore[misc]

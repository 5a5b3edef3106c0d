"""``eventconfig serve`` and ``eventconfig project``: long-running processes, stopped by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, load_settings, run, until_signal
from eventconfig.kafka.topics import admin_client, check_topics
from eventconfig.push.role import PushProjector
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from eventconfig.tasks import cancel
from eventconfig.trustgraph import topics as trustgraph_topics
from eventconfig.trustgraph.wire import DEFAULT_TOPICSPACE, TrustGraphTopics


def trustgraph_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--trustgraph`` / ``--trustgraph-topicspace``: also speak TrustGraph's config protocol."""
    command = click.option("--trustgraph-topicspace", metavar="TS",
                           help="TrustGraph topicspace to serve (implies --trustgraph; default 'tg') "
                                "[env EVENTCONFIG_TRUSTGRAPH_TOPICSPACE].")(command)
    return click.option("--trustgraph", is_flag=True,
                        help="Serve TrustGraph's JSON config protocol on TS.request.config, TS.response.config "
                             "and TS.notify.config.")(command)


def load_serve_settings(ctx: click.Context, trustgraph: bool, trustgraph_topicspace: str | None,
                        **options: Any) -> Settings:
    """The settings with the command's options; ``--trustgraph`` alone serves the topicspace ``tg``."""
    settings = load_settings(ctx, trustgraph_topicspace=trustgraph_topicspace, **options)
    if trustgraph and not settings.trustgraph_topicspace:
        settings = dataclasses.replace(settings, trustgraph_topicspace=DEFAULT_TOPICSPACE)
    return settings


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port (0: off).")
@click.option("--max-value-bytes", type=int, help="Largest value a put may store (default 512 KiB).")
@click.option("--max-items", "max_items_per_request", type=int, help="Most items in one request (default 10000).")
@click.option("--max-name-bytes", type=int,
              help="Longest workspace, type or key name in UTF-8 bytes (default 1024).")
@click.option("--max-id-bytes", type=int,
              help="Longest request id header; a request with a longer one goes to the DLQ unanswered (default 256).")
@click.option("--max-actor-bytes", type=int, help="Longest actor header (default 256).")
@click.option("--min-version-wait-ms", type=int, help="How long a min_version read may wait (default 5000).")
@click.option("--projector/--no-projector", default=True, show_default=True,
              help="Also run the push projector (the pokes the writer does not make, TrustGraph pushes).")
@trustgraph_options
@click.pass_context
def serve(ctx: click.Context, projector: bool, **options: Any) -> None:
    """Run the writer, the materialized view and the push projector.

    Several processes on the same topics form an active/standby set for each role; give them all the
    same --trustgraph options.
    """
    service = ConfigService(load_serve_settings(ctx, **options), projector=projector)
    run(until_signal(service.start, service.wait, service.stop))


@click.command(context_settings=CONTEXT_SETTINGS)
@trustgraph_options
@click.pass_context
def project(ctx: click.Context, **options: Any) -> None:
    """Run only the push projector: the pokes the writer did not make, and TrustGraph pushes (exactly once)."""
    settings = load_serve_settings(ctx, **options)
    projector = PushProjector(settings)
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal task
        async with admin_client(settings) as admin:
            await check_topics(admin, settings)
            if settings.trustgraph_topicspace:
                topicspace = TrustGraphTopics.of(settings.trustgraph_topicspace)
                await trustgraph_topics.ensure_topics(admin, settings, topicspace)
        task = asyncio.create_task(projector.run())

    async def wait() -> None:
        assert task is not None
        await task

    async def stop() -> None:
        await cancel(task)

    run(until_signal(start, wait, stop))

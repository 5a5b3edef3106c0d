"""``eventconfig topics create|check``: the topics of docs/design.md §3."""

from __future__ import annotations

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, load_settings, run, stderr
from eventconfig.kafka.topics import admin_client, check_topics, create_topics
from eventconfig.settings import Settings


@click.group(context_settings=CONTEXT_SETTINGS)
def topics() -> None:
    """Create or check the seven topics of a deployment."""


@topics.command()
@click.option("--replication-factor", type=click.IntRange(min=1),
              help="Replicas per topic [default: 3, or the cluster's broker count if smaller].")
@click.option("--min-insync-replicas", type=click.IntRange(min=1),
              help="min.insync.replicas per topic [default: a majority of the replicas: 1 of 1, 1 of 2, 2 of 3].")
@click.pass_context
def create(ctx: click.Context, replication_factor: int | None, min_insync_replicas: int | None) -> None:
    """Create the topics that are missing, then check every one.

    Exits 1 with one line when the cluster cannot take the replication factor and min.insync.replicas.
    """
    settings = load_settings(ctx, replication_factor=replication_factor, min_insync_replicas=min_insync_replicas)

    async def go() -> None:
        async with admin_client(settings) as admin:
            created = await create_topics(admin, settings)
        _report(settings, created)

    run(go())


@topics.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check that the topics exist with a safe layout; exit 1 with the reason if not."""
    settings = load_settings(ctx)

    async def go() -> None:
        async with admin_client(settings) as admin:
            warnings = await check_topics(admin, settings)
        for warning in warnings:
            stderr.print(f"[yellow]warning:[/] {warning}")
        _report(settings, [])

    run(go())


def _report(settings: Settings, created: list[str]) -> None:
    names = settings.topics
    for role, name in vars(names).items():
        state = "created" if name in created else "ok"
        click.echo(f"{role:<9} {name:<40} {state}")

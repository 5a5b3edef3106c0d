"""``eventconfig watch``: print pokes as they arrive, optionally with the refreshed values."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import click
from aiokafka import TopicPartition

from eventconfig.cli.common import CONTEXT_SETTINGS, load_settings, run
from eventconfig.client import ConfigClient
from eventconfig.codec import default_codec
from eventconfig.errors import TopologyError
from eventconfig.kafka.connect import started
from eventconfig.kafka.reading import committed_consumer
from eventconfig.settings import Settings


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--type", "-t", "types", multiple=True, help="Only pokes touching this type (repeatable).")
@click.option("--workspace", "-w", help="Only pokes touching this workspace.")
@click.option("--values", is_flag=True, help="Also fetch and print the changed values.")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--from-beginning", is_flag=True, help="Replay the pokes the notify topic still holds first.")
@click.pass_context
def watch(ctx: click.Context, types: tuple[str, ...], workspace: str | None, values: bool, fmt: str,
          from_beginning: bool) -> None:
    """Print config change notifications (pokes) until interrupted."""
    run(_watch(load_settings(ctx), set(types), workspace, values, fmt, from_beginning))


def _matching(poke: dict[str, Any], types: set[str], workspace: str | None) -> dict[str, list[str]]:
    return {t: [w for w in wss if workspace is None or w == workspace]
            for t, wss in poke["changes"].items() if (not types or t in types)
            and any(workspace is None or w == workspace for w in wss)}


async def _watch(settings: Settings, types: set[str], workspace: str | None, values: bool, fmt: str,
                 from_beginning: bool) -> None:
    codec = default_codec()
    tp = TopicPartition(settings.topics.notify, 0)
    async with contextlib.AsyncExitStack() as stack:  # closes whatever was opened, however it ends
        consumer = committed_consumer(settings, request_timeout_ms=settings.request_timeout_ms)
        await stack.enter_async_context(started(consumer, settings))
        if tp.topic not in await consumer.topics():
            raise TopologyError(f"notify topic {tp.topic} does not exist; run `eventconfig topics create`")
        client = await stack.enter_async_context(ConfigClient(settings)) if values else None
        consumer.assign([tp])
        await (consumer.seek_to_beginning(tp) if from_beginning else consumer.seek_to_end(tp))
        while True:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            for record in batches.get(tp, []):
                poke = codec.decode("ConfigPush", record.value)
                changes = _matching(poke, types, workspace)
                lifecycle = poke["workspace_changes"]
                if not changes and not (lifecycle and not types):
                    continue
                fetched: dict[str, dict[str, dict[str, str]]] = {}
                if client is not None:
                    for type_, workspaces in changes.items():
                        for ws in workspaces:
                            fetched.setdefault(ws, {})[type_] = await client.get_values(
                                ws, type_, min_version=poke["version"])
                _print(poke["version"], changes, lifecycle, fetched, fmt)


def _print(version: int, changes: dict[str, list[str]], lifecycle: dict[str, list[str]] | None,
           fetched: dict[str, dict[str, dict[str, str]]], fmt: str) -> None:
    if fmt == "json":
        event: dict[str, Any] = {"version": version, "changes": changes, "workspace_changes": lifecycle}
        if fetched:
            event["values"] = fetched
        click.echo(json.dumps(event, sort_keys=True))
        return
    parts = [f"{t}: {', '.join(wss)}" for t, wss in changes.items()]
    if lifecycle:
        parts += [f"workspace created: {w}" for w in lifecycle["created"]]
        parts += [f"workspace deleted: {w}" for w in lifecycle["deleted"]]
    click.echo(f"version {version}  " + "; ".join(parts))
    for ws, config in fetched.items():
        for type_, items in config.items():
            for key, value in items.items():
                click.echo(f"  {ws}/{type_}/{key} = {value}")

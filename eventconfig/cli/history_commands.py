"""``eventconfig history|state|diff``: who changed what and when, and the configuration at any version.

Example::

    eventconfig history -w acme -k system --since 2026-01-01
    eventconfig state --at-version 42 -w acme > acme-at-42.json
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import click

from eventconfig.audit import HistoryQuery, HistoryReader, Mutation
from eventconfig.cli.audit_output import (TIME, VERSION, echo_json, echo_jsonl, format_option, note, progress_bar,
                                          show, table, terminal, workspace_filter)
from eventconfig.cli.common import CONTEXT_SETTINGS, load_settings, run


_HISTORY_HEADERS = ("version", "time", "actor", "request", "workspace", "op", "type", "key", "previous", "value")


def _history_rows(mutation: Mutation) -> list[tuple[str, ...]]:
    head = (str(mutation.version), mutation.time, mutation.actor or "-", mutation.request_id, mutation.workspace,
            mutation.operation)
    if not mutation.changes:
        return [head + ("", "", "", "")]
    return [head + (c.type, c.key, show(c.previous), show(c.value)) for c in mutation.changes]


@click.command("history", context_settings=CONTEXT_SETTINGS)
@workspace_filter
@click.option("--type", "-t", "type_", help="Only changes of this type.")
@click.option("--key", "-k", help="Only changes of this key.")
@click.option("--from-version", type=VERSION, metavar="N",
              help="From version N (inclusive; past the last version the listing is empty, or --follow waits).")
@click.option("--to-version", type=VERSION, metavar="N", help="Up to version N (inclusive).")
@click.option("--since", type=TIME, help="From this time (ISO-8601 or epoch ms, inclusive).")
@click.option("--until", type=TIME, help="Up to this time (ISO-8601 or epoch ms, inclusive).")
@format_option("table")
@click.option("--follow", is_flag=True, help="Keep printing new mutations until interrupted (Ctrl-C).")
@click.pass_context
def history_cmd(ctx: click.Context, workspace: str | None, type_: str | None, key: str | None,
                from_version: int | None, to_version: int | None, since: int | None, until: int | None,
                fmt: str, follow: bool) -> None:
    """List mutations: version, time, actor, request id, workspace, operation, and each change
    (type, key, previous -> new). Filters combine; type/key filters also trim the changes shown."""
    if from_version is not None and to_version is not None and from_version > to_version:
        raise click.UsageError("--from-version is above --to-version")
    if follow and fmt == "json":
        raise click.UsageError("--follow prints as mutations arrive: use --format table or jsonl")
    query = HistoryQuery(workspace, type_, key, from_version, to_version, since, until)
    settings = load_settings(ctx)

    async def go() -> None:
        async with HistoryReader(settings) as history:
            held = await history.held()
            if held.truncated and not query.bounded_below:
                note(f"note: {held.describe()}; older mutations were deleted by retention")
            if follow:
                await _stream_history(history.read(query, follow=True), fmt)
                return
            with progress_bar() as progress:
                stream = history.read(query, progress=progress)
                if fmt != "table" or not terminal():
                    await _stream_history(stream, fmt)
                    return
                rows = [row async for mutation in stream for row in _history_rows(mutation)]
            table(_HISTORY_HEADERS, rows)

    try:
        run(go())
    except KeyboardInterrupt:
        if not follow:
            raise
        raise SystemExit(130) from None  # Ctrl-C is how --follow ends: no "Aborted!"


async def _stream_history(stream: AsyncIterator[Mutation], fmt: str) -> None:
    """Print mutations as they are read: tab-separated rows, JSON lines, or one JSON array.

    Nothing is printed before the first mutation arrives, so an error (out of retention) leaves
    stdout empty rather than holding half a table or an unclosed JSON array.
    """
    count = 0
    async for mutation in stream:
        if fmt == "table":
            if not count:
                click.echo("\t".join(_HISTORY_HEADERS))
            for row in _history_rows(mutation):
                click.echo("\t".join(row))
        elif fmt == "jsonl":
            click.echo(json.dumps(mutation.to_json(), ensure_ascii=False))
        else:
            text = json.dumps(mutation.to_json(), indent=2, ensure_ascii=False)
            click.echo(("[\n" if not count else ",\n") + text, nl=False)
        count += 1
    if fmt == "json":
        click.echo("\n]" if count else "[]")
    elif fmt == "table" and not count:
        click.echo("\t".join(_HISTORY_HEADERS))


# --- state and diff ----------------------------------------------------------------------------


@click.command("state", context_settings=CONTEXT_SETTINGS)
@click.option("--at-version", type=VERSION, metavar="N", help="The state right after version N.")
@click.option("--at-time", type=TIME, help="The state at this time (ISO-8601, no zone = UTC, or epoch ms).")
@workspace_filter
@format_option("json")
@click.pass_context
def state_cmd(ctx: click.Context, at_version: int | None, at_time: int | None, workspace: str | None,
              fmt: str) -> None:
    """Print the configuration as of a version or a time, replayed from the history.

    json prints like `dump`: {type: {key: value}} with --workspace, else {workspace: {type: {key: value}}}.
    """
    if (at_version is None) == (at_time is None):
        raise click.UsageError("give exactly one of --at-version and --at-time")
    settings = load_settings(ctx)

    async def go() -> Any:
        async with HistoryReader(settings) as history:
            with progress_bar() as progress:
                return await history.state(at_version=at_version, at_time_ms=at_time, workspace=workspace,
                                           progress=progress)

    state = run(go())
    note(state.describe())
    if fmt == "json":
        click.echo(json.dumps(state.config(workspace) if workspace is not None else state.workspaces(),
                              indent=2, sort_keys=True))
        return
    items = sorted(state.items.items())
    if fmt == "jsonl":
        echo_jsonl({"workspace": i.workspace, "type": i.type, "key": i.key, "value": e.value, "version": e.version}
                    for i, e in items)
    else:
        table(("workspace", "type", "key", "value", "version"),
               ((i.workspace, i.type, i.key, show(e.value), str(e.version)) for i, e in items))


@click.command("diff", context_settings=CONTEXT_SETTINGS)
@click.option("--from", "from_version", type=VERSION, required=True, metavar="N", help="The older version.")
@click.option("--to", "to_version", type=VERSION, required=True, metavar="M", help="The newer version.")
@workspace_filter
@format_option("table")
@click.pass_context
def diff_cmd(ctx: click.Context, from_version: int, to_version: int, workspace: str | None, fmt: str) -> None:
    """Print the keys added, removed and changed from version N to version M, with old and new values.

    Only the mutations between N and M are read, so N may be as old as the history still holds.
    """
    settings = load_settings(ctx)

    async def go() -> Any:
        async with HistoryReader(settings) as history:
            with progress_bar() as progress:
                return await history.diff(from_version, to_version, workspace=workspace, progress=progress)

    diff = run(go())
    counts = ", ".join(f"{len(diff.of_kind(kind))} {kind}" for kind in ("added", "removed", "changed"))
    note(f"version {from_version} -> {to_version}: {counts}")
    if fmt == "json":
        echo_json(diff.to_json())
    elif fmt == "jsonl":
        echo_jsonl(c.to_json() for c in diff.changes)
    else:
        table(("change", "workspace", "type", "key", "old", "new"),
               ((c.kind, c.item.workspace, c.item.type, c.item.key, show(c.old), show(c.new)) for c in diff.changes))


# --- local views -------------------------------------------------------------------------------

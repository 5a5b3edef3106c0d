"""``eventconfig history|state|diff|rebuild|verify|export|import``: audit and replay from a shell.

The work is done by :mod:`eventconfig.audit`; this module parses options and renders results:
``--format table`` (a rich table on a terminal, tab-separated lines when piped), ``json`` or
``jsonl``; progress bars on stderr only when stderr is a terminal; notes and errors on stderr, so
stdout stays data. Values in tables are shown JSON-quoted, ``-`` meaning "absent".

Example::

    eventconfig history -w acme -k system --since 2026-01-01
    eventconfig state --at-version 42 -w acme > acme-at-42.json
    eventconfig verify || echo "view and history disagree"
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from eventconfig.audit import (AuditError, ExportDocument, HistoryQuery, HistoryReader, Mutation, parse_time,
                               rebuild_view, verify_view)
from eventconfig.audit import Progress as ProgressFn
from eventconfig.audit.exchange import ADD, OVERWRITE
from eventconfig.audit.transfer import export_at_version, export_workspace, import_document
from eventconfig.cli.common import CONTEXT_SETTINGS, fail, run, stderr
from eventconfig.cli.config_commands import _actor, _call, _default_actor, _timeout
from eventconfig.settings import Settings

_PHASES = {"log": "reading the log", "history": "reading the history"}


class _TimeType(click.ParamType):
    """ISO-8601 (no zone = UTC) or epoch milliseconds, as epoch milliseconds."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


TIME = _TimeType()
_VERSION = click.IntRange(min=0)


def _format_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "jsonl"]), default=default,
                        show_default=True, help="table (rich on a terminal, tab-separated when piped), json, jsonl.")


_workspace_filter = click.option("--workspace", "-w", help="Only this workspace (default: every workspace).")
_path = click.option("--path", type=click.Path(file_okay=False, path_type=Path),
                     help="The local view (default: DATA_DIR/view, the service's own).")


# --- rendering ---------------------------------------------------------------------------------


def _terminal() -> bool:
    return click.get_text_stream("stdout").isatty()


def _show(value: str | None) -> str:
    return "-" if value is None else json.dumps(value, ensure_ascii=False)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _echo_jsonl(values: Iterable[Any]) -> None:
    for value in values:
        click.echo(json.dumps(value, ensure_ascii=False))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A rich table on a terminal, else a header line and tab-separated rows."""
    if _terminal():
        table = Table(header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    click.echo("\t".join(headers))
    for row in rows:
        click.echo("\t".join(row))


def _note(message: str) -> None:
    stderr.print(message, markup=False)


@contextlib.contextmanager
def _progress() -> Iterator[ProgressFn | None]:
    """A progress callback drawing rich bars on stderr when it is a terminal; None when it is not."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # The view's own progress logs would tear the bars; its warnings still show.
    view_log = logging.getLogger("eventconfig.view")
    level = view_log.level
    view_log.setLevel(max(level, logging.WARNING))
    try:
        with Progress(*columns, console=Console(stderr=True), transient=True) as bars:
            tasks: dict[str, Any] = {}

            def update(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=total)
                bars.update(tasks[phase], completed=done, total=total)

            yield update
    finally:
        view_log.setLevel(level)


def _settings(ctx: click.Context) -> Settings:
    from eventconfig.cli.main import load_settings

    return load_settings(ctx)


# --- history -----------------------------------------------------------------------------------

_HISTORY_HEADERS = ("version", "time", "actor", "request", "workspace", "op", "type", "key", "previous", "value")


def _history_rows(mutation: Mutation) -> list[tuple[str, ...]]:
    head = (str(mutation.version), mutation.time, mutation.actor or "-", mutation.request_id, mutation.workspace,
            mutation.operation)
    if not mutation.changes:
        return [head + ("", "", "", "")]
    return [head + (c.type, c.key, _show(c.previous), _show(c.value)) for c in mutation.changes]


@click.command("history", context_settings=CONTEXT_SETTINGS)
@_workspace_filter
@click.option("--type", "-t", "type_", help="Only changes of this type.")
@click.option("--key", "-k", help="Only changes of this key.")
@click.option("--from-version", type=_VERSION, metavar="N", help="From version N (inclusive).")
@click.option("--to-version", type=_VERSION, metavar="N", help="Up to version N (inclusive).")
@click.option("--since", type=TIME, help="From this time (ISO-8601 or epoch ms, inclusive).")
@click.option("--until", type=TIME, help="Up to this time (ISO-8601 or epoch ms, inclusive).")
@_format_option("table")
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
    settings = _settings(ctx)

    async def go() -> None:
        async with HistoryReader(settings) as history:
            held = await history.held()
            if held.truncated and not query.bounded_below:
                _note(f"note: {held.describe()}; older mutations were deleted by retention")
            if follow:
                await _stream_history(history.read(query, follow=True), fmt)
                return
            with _progress() as progress:
                stream = history.read(query, progress=progress)
                if fmt != "table" or not _terminal():
                    await _stream_history(stream, fmt)
                    return
                rows = [row async for mutation in stream for row in _history_rows(mutation)]
            _table(_HISTORY_HEADERS, rows)

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
@click.option("--at-version", type=_VERSION, metavar="N", help="The state right after version N.")
@click.option("--at-time", type=TIME, help="The state at this time (ISO-8601, no zone = UTC, or epoch ms).")
@_workspace_filter
@_format_option("json")
@click.pass_context
def state_cmd(ctx: click.Context, at_version: int | None, at_time: int | None, workspace: str | None,
              fmt: str) -> None:
    """Print the configuration as of a version or a time, replayed from the history.

    json prints like `dump`: {type: {key: value}} with --workspace, else {workspace: {type: {key: value}}}.
    """
    if (at_version is None) == (at_time is None):
        raise click.UsageError("give exactly one of --at-version and --at-time")
    settings = _settings(ctx)

    async def go() -> Any:
        async with HistoryReader(settings) as history:
            with _progress() as progress:
                return await history.state(at_version=at_version, at_time_ms=at_time, workspace=workspace,
                                           progress=progress)

    state = run(go())
    _note(state.describe())
    if fmt == "json":
        click.echo(json.dumps(state.config(workspace) if workspace is not None else state.workspaces(),
                              indent=2, sort_keys=True))
        return
    items = sorted(state.items.items())
    if fmt == "jsonl":
        _echo_jsonl({"workspace": i.workspace, "type": i.type, "key": i.key, "value": e.value, "version": e.version}
                    for i, e in items)
    else:
        _table(("workspace", "type", "key", "value", "version"),
               ((i.workspace, i.type, i.key, _show(e.value), str(e.version)) for i, e in items))


@click.command("diff", context_settings=CONTEXT_SETTINGS)
@click.option("--from", "from_version", type=_VERSION, required=True, metavar="N", help="The older version.")
@click.option("--to", "to_version", type=_VERSION, required=True, metavar="M", help="The newer version.")
@_workspace_filter
@_format_option("table")
@click.pass_context
def diff_cmd(ctx: click.Context, from_version: int, to_version: int, workspace: str | None, fmt: str) -> None:
    """Print the keys added, removed and changed from version N to version M, with old and new values.

    Only the mutations between N and M are read, so N may be as old as the history still holds.
    """
    settings = _settings(ctx)

    async def go() -> Any:
        async with HistoryReader(settings) as history:
            with _progress() as progress:
                return await history.diff(from_version, to_version, workspace=workspace, progress=progress)

    diff = run(go())
    counts = ", ".join(f"{len(diff.of_kind(kind))} {kind}" for kind in ("added", "removed", "changed"))
    _note(f"version {from_version} -> {to_version}: {counts}")
    if fmt == "json":
        _echo_json(diff.to_json())
    elif fmt == "jsonl":
        _echo_jsonl(c.to_json() for c in diff.changes)
    else:
        _table(("change", "workspace", "type", "key", "old", "new"),
               ((c.kind, c.item.workspace, c.item.type, c.item.key, _show(c.old), _show(c.new)) for c in diff.changes))


# --- local views -------------------------------------------------------------------------------


@click.command("rebuild", context_settings=CONTEXT_SETTINGS)
@_path
@click.pass_context
def rebuild_cmd(ctx: click.Context, path: Path | None) -> None:
    """Wipe a local view and rebuild it from the log (refused while a process has it open)."""
    settings = _settings(ctx)

    async def go() -> Any:
        with _progress() as progress:
            return await rebuild_view(settings, path, progress=progress)

    result = run(go())
    click.echo(f"rebuilt the view at {result.path}: version {result.version}, {result.records} log records in "
               f"{result.seconds:.2f} s ({result.records_per_s:,.0f} records/s)")


@click.command("verify", context_settings=CONTEXT_SETTINGS)
@_path
@click.option("--no-catch-up", is_flag=True,
              help="Compare the view as it is on disk; a view behind the history is then a difference.")
@click.option("--scratch", is_flag=True,
              help="Verify the log itself: compare with a temporary view built from it (the service may run).")
@_format_option("table")
@click.pass_context
def verify_cmd(ctx: click.Context, path: Path | None, no_catch_up: bool, scratch: bool, fmt: str) -> None:
    """Replay the history and compare it with a view of the log, key by key and version by version.

    Exit code 0 when they agree; 1 with every difference (missing, extra, value, version, view version).
    """
    if scratch and (path is not None or no_catch_up):
        raise click.UsageError("--scratch builds its own view: it takes neither --path nor --no-catch-up")
    settings = _settings(ctx)

    async def go() -> Any:
        with _progress() as progress:
            return await verify_view(settings, path, catch_up=not no_catch_up, scratch=scratch, progress=progress)

    report = run(go())
    if fmt == "json":
        _echo_json(report.to_json())
    elif fmt == "jsonl":
        _echo_jsonl(d.to_json() for d in report.differences)
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        _note(f"verify failed: {len(report.differences)} differences")
        raise SystemExit(1)


# --- export and import -------------------------------------------------------------------------


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.option("--workspace", "-w", required=True, envvar="EVENTCONFIG_WORKSPACE", show_envvar=True,
              help="Workspace to export.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True,
              help="File to write ('-': standard output).")
@click.option("--at-version", type=_VERSION, metavar="N",
              help="Export the workspace as of version N (replayed from the history) instead of now.")
@_timeout
@click.pass_context
def export_cmd(ctx: click.Context, workspace: str, output: str, at_version: int | None, timeout: float) -> None:
    """Write one workspace as an eventconfig-export/1 JSON document (see README: Audit and replay)."""
    if at_version is None:
        document = _call(ctx, timeout, lambda client: export_workspace(client, workspace))
    else:
        settings = _settings(ctx)

        async def go() -> ExportDocument:
            with _progress() as progress:
                return await export_at_version(settings, workspace, at_version, progress=progress)

        document = run(go())
    if output == "-":
        click.echo(document.to_json(), nl=False)
    else:
        Path(output).write_text(document.to_json(), encoding="utf-8")
    where = "" if output == "-" else f" to {output}"
    _note(f"exported {document.items} items of workspace {workspace} at version {document.version}{where}")


@click.command("import", context_settings=CONTEXT_SETTINGS)
@click.option("--workspace", "-w", help="Workspace to import into (default: the document's own).")
@click.option("--input", "-i", "input_", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Export document to read ('-': standard input).")
@click.option("--overwrite", is_flag=True, help="Also replace existing keys whose value differs.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@_format_option("table")
@_actor
@_timeout
@click.pass_context
def import_cmd(ctx: click.Context, workspace: str | None, input_: str, overwrite: bool, dry_run: bool, fmt: str,
               actor: str | None, timeout: float) -> None:
    """Import an export document in ONE write (one version): missing keys are added, existing ones kept
    unless --overwrite. A concurrent change to any imported key fails the import with nothing written."""
    source = "standard input" if input_ == "-" else input_
    try:
        with click.open_file(input_, "r", encoding="utf-8") as stream:
            text = stream.read()
        document = ExportDocument.from_json(text, source)
    except (OSError, AuditError) as exc:
        fail(str(exc))
    target = workspace or document.workspace
    result = _call(ctx, timeout, lambda c: import_document(c, target, document, overwrite=overwrite, dry_run=dry_run),
                   _default_actor(actor))
    shown = result.plan.items if dry_run else [i for i in result.plan.items if i.action in (ADD, OVERWRITE)]
    if fmt == "json":
        _echo_json({"workspace": target, "dry_run": dry_run, "version": result.version,
                    "items": [i.to_json() for i in shown]})
    elif fmt == "jsonl":
        _echo_jsonl(i.to_json() for i in shown)
    else:
        _table(("action", "type", "key", "old", "new"),
               ((i.action, i.type, i.key, _show(i.old), _show(i.new)) for i in shown))
    if dry_run:
        _note(f"dry run, nothing written: importing into {target} would give {result.plan.summary()}")
    elif result.version is None:
        _note(f"nothing to import into {target}: {result.plan.summary()}")
    else:
        _note(f"imported into {target} at version {result.version}: {result.plan.summary()}")


COMMANDS = (history_cmd, state_cmd, diff_cmd, rebuild_cmd, verify_cmd, export_cmd, import_cmd)

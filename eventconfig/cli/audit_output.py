"""Rendering shared by the audit commands: formats, tables, notes, progress bars, option types.

``--format table`` is a rich table on a terminal and tab-separated lines when piped; ``json`` and
``jsonl`` are for programs. Progress bars go to stderr, and only when stderr is a terminal, so stdout
stays data. Values in tables are shown JSON-quoted, ``-`` meaning "absent".
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from eventconfig.audit import parse_time
from eventconfig.audit import Progress as ProgressFn
from eventconfig.cli.common import stderr


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
VERSION = click.IntRange(min=0)


def format_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "jsonl"]), default=default,
                        show_default=True, help="table (rich on a terminal, tab-separated when piped), json, jsonl.")


workspace_filter = click.option("--workspace", "-w", help="Only this workspace (default: every workspace).")
view_path = click.option("--path", type=click.Path(file_okay=False, path_type=Path),
                     help="The local view (default: DATA_DIR/view, the service's own).")


# --- rendering ---------------------------------------------------------------------------------


def terminal() -> bool:
    return sys.stdout.isatty()


def show(value: str | None) -> str:
    return "-" if value is None else json.dumps(value, ensure_ascii=False)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_jsonl(values: Iterable[Any]) -> None:
    for value in values:
        click.echo(json.dumps(value, ensure_ascii=False))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A rich table on a terminal, else a header line and tab-separated rows."""
    if terminal():
        grid = Table(header_style="bold")
        for header in headers:
            grid.add_column(header, overflow="fold")
        for row in rows:
            grid.add_row(*row)
        Console().print(grid)
        return
    click.echo("\t".join(headers))
    for row in rows:
        click.echo("\t".join(row))


def note(message: str) -> None:
    stderr.print(message, markup=False)


@contextlib.contextmanager
def progress_bar() -> Iterator[ProgressFn | None]:
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


# --- history -----------------------------------------------------------------------------------

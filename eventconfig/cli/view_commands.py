"""``eventconfig rebuild|verify``: rebuild a local view from the log, or check it against the history.

Example::

    eventconfig verify || echo "view and history disagree"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from eventconfig.audit import rebuild_view, verify_view
from eventconfig.audit.chain import ChainReport
from eventconfig.audit.history_chain import verify_history
from eventconfig.cli.audit_output import (echo_json, echo_jsonl, format_option, note, progress_bar, view_path)
from eventconfig.cli.common import CONTEXT_SETTINGS, load_settings, run
from eventconfig.settings import Settings


@click.command("rebuild", context_settings=CONTEXT_SETTINGS)
@view_path
@click.pass_context
def rebuild_cmd(ctx: click.Context, path: Path | None) -> None:
    """Wipe a local view and rebuild it from the log (refused while a process has it open)."""
    settings = load_settings(ctx)

    async def go() -> Any:
        with progress_bar() as progress:
            return await rebuild_view(settings, path, progress=progress)

    result = run(go())
    click.echo(f"rebuilt the view at {result.path}: version {result.version}, {result.records} log records in "
               f"{result.seconds:.2f} s ({result.records_per_s:,.0f} records/s)")


@click.command("verify", context_settings=CONTEXT_SETTINGS)
@view_path
@click.option("--no-catch-up", is_flag=True,
              help="Compare the view as it is on disk; a view behind the history is then a difference.")
@click.option("--scratch", is_flag=True,
              help="Verify the log itself: compare with a temporary view built from it (the service may run).")
@click.option("--history", "chain", is_flag=True,
              help="Check the history's hash chain instead: report the first altered, inserted, dropped or "
                   "reordered record, and print the chain head to keep.")
@click.option("--anchor", metavar="VERSION:HASH", callback=lambda _c, _p, v: _anchor(v),
              help="With --history: a head printed by an earlier run; the chain must pass through it.")
@format_option("table")
@click.pass_context
def verify_cmd(ctx: click.Context, path: Path | None, no_catch_up: bool, scratch: bool, chain: bool,
               anchor: tuple[int, str] | None, fmt: str) -> None:
    """Replay the history and compare it with a view of the log, key by key and version by version.

    Exit code 0 when they agree; 1 with every difference (missing, extra, value, version, view version).
    With --history: 0 when the hash chain holds up to the log's last commit marker; 1 naming the first
    bad version.
    """
    if scratch and (path is not None or no_catch_up):
        raise click.UsageError("--scratch builds its own view: it takes neither --path nor --no-catch-up")
    if chain and (scratch or path is not None or no_catch_up):
        raise click.UsageError("--history checks the history topic alone: it takes no view options")
    if anchor is not None and not chain:
        raise click.UsageError("--anchor belongs to --history")
    settings = load_settings(ctx)
    if chain:
        _verify_chain(settings, fmt, anchor)
        return

    async def go() -> Any:
        with progress_bar() as progress:
            return await verify_view(settings, path, catch_up=not no_catch_up, scratch=scratch, progress=progress)

    report = run(go())
    if fmt == "json":
        echo_json(report.to_json())
    elif fmt == "jsonl":
        echo_jsonl(d.to_json() for d in report.differences)
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        note(f"verify failed: {len(report.differences)} differences")
        raise SystemExit(1)


def _anchor(text: str | None) -> tuple[int, str] | None:
    """``VERSION:HASH`` as (version, hash); a UsageError names the form."""
    if text is None:
        return None
    version, _, digest = text.partition(":")
    if not (version.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise click.BadParameter(f"{text[:80]!r} is not VERSION:HASH (as `verify --history` prints the head)")
    return int(version), digest


def _verify_chain(settings: Settings, fmt: str, anchor: tuple[int, str] | None) -> None:
    async def go() -> ChainReport:
        with progress_bar() as progress:
            return await verify_history(settings, progress=progress, anchor=anchor)

    report = run(go())
    if fmt in ("json", "jsonl"):
        echo_json(report.to_json())
    else:
        for line in report.lines():
            click.echo(line)
    if report.first_bad is not None:
        note(f"verify --history failed: {report.first_bad.describe()}")
        raise SystemExit(1)


# --- export and import -------------------------------------------------------------------------

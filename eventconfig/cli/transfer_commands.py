"""``eventconfig export|import``: one workspace as an ``eventconfig-export/1`` JSON document, and back
in one write; ``import`` also takes a TrustGraph config dump (one write per workspace)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from eventconfig.audit import AuditError, ExportDocument, ExportFormatError, ImportResult, PlannedItem
from eventconfig.audit.exchange import ADD, OVERWRITE
from eventconfig.audit.transfer import export_at_version, export_workspace, import_document
from eventconfig.client import ConfigClient
from eventconfig.cli.audit_output import (VERSION, echo_json, echo_jsonl, format_option, note, progress_bar,
                                          show, table)
from eventconfig.cli.common import (CONTEXT_SETTINGS, actor_option, default_actor, fail, load_settings, run,
                                    timeout_option)
from eventconfig.cli.config_commands import call_service
from eventconfig.trustgraph.dump import is_dump, read_dump


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.option("--workspace", "-w", required=True, envvar="EVENTCONFIG_WORKSPACE", show_envvar=True,
              help="Workspace to export.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True,
              help="File to write ('-': standard output).")
@click.option("--at-version", type=VERSION, metavar="N",
              help="Export the workspace as of version N (replayed from the history) instead of now.")
@timeout_option
@click.pass_context
def export_cmd(ctx: click.Context, workspace: str, output: str, at_version: int | None, timeout: float) -> None:
    """Write one workspace as an eventconfig-export/1 JSON document (see README: Audit and replay)."""
    if output != "-" and not Path(output).parent.is_dir():  # checked before the (maybe long) read
        raise click.BadParameter(f"folder {Path(output).parent} does not exist", param_hint="'--output' / '-o'")
    if at_version is None:
        document = call_service(ctx, timeout, lambda client: export_workspace(client, workspace))
    else:
        settings = load_settings(ctx)

        async def go() -> ExportDocument:
            with progress_bar() as progress:
                return await export_at_version(settings, workspace, at_version, progress=progress)

        document = run(go())
    if output == "-":
        click.echo(document.to_json(), nl=False)
    else:
        Path(output).write_text(document.to_json(), encoding="utf-8")
    where = "" if output == "-" else f" to {output}"
    note(f"exported {document.items} items of workspace {workspace} at version {document.version}{where}")


@click.command("import", context_settings=CONTEXT_SETTINGS)
@click.option("--workspace", "-w", help="Workspace to import into (default: the document's own); with a TrustGraph "
                                         "dump, the one workspace of the dump to import.")
@click.option("--input", "-i", "input_", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Export document or TrustGraph dump to read ('-': standard input).")
@click.option("--overwrite", is_flag=True, help="Also replace existing keys whose value differs.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@format_option("table")
@actor_option
@timeout_option
@click.pass_context
def import_cmd(ctx: click.Context, workspace: str | None, input_: str, overwrite: bool, dry_run: bool, fmt: str,
               actor: str | None, timeout: float) -> None:
    """Import an export document in ONE write (one version): missing keys are added, existing ones kept
    unless --overwrite. A concurrent change to any imported key fails the import with nothing written.

    A TrustGraph config dump ({workspace: {type: {key: value}}}, see README: Running TrustGraph on
    eventconfig) is imported the same way, one write per workspace, __workspaces__ last."""
    source = "standard input" if input_ == "-" else input_
    try:
        with click.open_file(input_, "r", encoding="utf-8") as stream:
            targets, dump = _read_import(stream.read(), source, workspace)
    except (OSError, AuditError) as exc:
        fail(str(exc))

    async def work(client: ConfigClient) -> list[ImportResult]:
        return [await import_document(client, target, document, overwrite=overwrite, dry_run=dry_run)
                for target, document in targets]

    results = call_service(ctx, timeout, work, default_actor(actor))
    _report(results, fmt, dry_run, dump)


def _read_import(text: str, source: str, workspace: str | None) -> tuple[list[tuple[str, ExportDocument]], bool]:
    """``(target workspace, document)`` pairs to import, and whether the input was a TrustGraph dump."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ExportFormatError(f"{source} is not JSON: {exc}") from None
    if not is_dump(document):
        export = ExportDocument.from_obj(document, source)
        return [(workspace or export.workspace, export)], False
    documents, skipped = read_dump(document, source)
    if skipped:
        note(f"skipped {len(skipped)} null values (eventconfig stores none; TrustGraph read them as missing): "
             + ", ".join(skipped))
    if workspace is not None:
        documents = [d for d in documents if d.workspace == workspace]
        if not documents:
            raise ExportFormatError(f"{source} has no workspace {workspace!r}")
    return [(d.workspace, d) for d in documents], True


def _report(results: list[ImportResult], fmt: str, dry_run: bool, by_workspace: bool) -> None:
    def shown(result: ImportResult) -> list[PlannedItem]:
        return list(result.plan.items) if dry_run else [i for i in result.plan.items if i.action in (ADD, OVERWRITE)]

    def json_of(result: ImportResult) -> dict[str, Any]:
        return {"workspace": result.workspace, "dry_run": dry_run, "version": result.version,
                "items": [i.to_json() for i in shown(result)]}

    if fmt == "json":
        echo_json([json_of(r) for r in results] if by_workspace else json_of(results[0]))
    elif fmt == "jsonl":
        echo_jsonl({**({"workspace": r.workspace} if by_workspace else {}), **i.to_json()}
                   for r in results for i in shown(r))
    else:
        columns = ("action", "type", "key", "old", "new")
        table((("workspace",) if by_workspace else ()) + columns,
              ((*((r.workspace,) if by_workspace else ()), i.action, i.type, i.key, show(i.old), show(i.new))
               for r in results for i in shown(r)))
    for result in results:
        target = result.workspace
        if dry_run:
            note(f"dry run, nothing written: importing into {target} would give {result.plan.summary()}")
        elif result.version is None:
            note(f"nothing to import into {target}: {result.plan.summary()}")
        else:
            note(f"imported into {target} at version {result.version}: {result.plan.summary()}")

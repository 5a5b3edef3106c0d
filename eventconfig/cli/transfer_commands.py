"""``eventconfig export|import``: one workspace as an ``eventconfig-export/1`` JSON document, and back
in one write."""

from __future__ import annotations

from pathlib import Path

import click

from eventconfig.audit import AuditError, ExportDocument
from eventconfig.audit.exchange import ADD, OVERWRITE
from eventconfig.audit.transfer import export_at_version, export_workspace, import_document
from eventconfig.cli.audit_output import (VERSION, echo_json, echo_jsonl, format_option, note, progress_bar,
                                          settings_of, show, table)
from eventconfig.cli.common import CONTEXT_SETTINGS, fail, run
from eventconfig.cli.config_commands import actor_option, call_service, default_actor, timeout_option


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
        settings = settings_of(ctx)

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
@click.option("--workspace", "-w", help="Workspace to import into (default: the document's own).")
@click.option("--input", "-i", "input_", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Export document to read ('-': standard input).")
@click.option("--overwrite", is_flag=True, help="Also replace existing keys whose value differs.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@format_option("table")
@actor_option
@timeout_option
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
    result = call_service(ctx, timeout,
                          lambda c: import_document(c, target, document, overwrite=overwrite, dry_run=dry_run),
                          default_actor(actor))
    shown = result.plan.items if dry_run else [i for i in result.plan.items if i.action in (ADD, OVERWRITE)]
    if fmt == "json":
        echo_json({"workspace": target, "dry_run": dry_run, "version": result.version,
                    "items": [i.to_json() for i in shown]})
    elif fmt == "jsonl":
        echo_jsonl(i.to_json() for i in shown)
    else:
        table(("action", "type", "key", "old", "new"),
               ((i.action, i.type, i.key, show(i.old), show(i.new)) for i in shown))
    if dry_run:
        note(f"dry run, nothing written: importing into {target} would give {result.plan.summary()}")
    elif result.version is None:
        note(f"nothing to import into {target}: {result.plan.summary()}")
    else:
        note(f"imported into {target} at version {result.version}: {result.plan.summary()}")

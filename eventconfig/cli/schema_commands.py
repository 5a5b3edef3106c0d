"""``eventconfig schema set|check|get|list|delete``: the JSON Schemas that validate config (docs/design.md §5.5).

A schema is stored as the item ``(__schemas__, TYPE, GLOB)``, so changing one is a write like any
other: versioned, in the history, exported and replayed. ``set`` first checks every existing value of
the type in the workspaces the glob matches and refuses, listing them, unless ``--force``: a schema
change must not strand values that every service already loaded.

Example::

    eventconfig schema check prompt prompt.schema.json      # which existing values would it refuse?
    eventconfig schema set prompt prompt.schema.json -w 'acme-*'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, actor_option, default_actor, fail, stderr, timeout_option
from eventconfig.cli.config_commands import call_service
from eventconfig.client import ConfigClient
from eventconfig.model import ItemKey
from eventconfig.validation import SCHEMAS_WORKSPACE, Problem, schema_problem, shown, value_problem

_SHOWN = 20  # offenders listed before "... and N more"

_type = click.argument("type_", metavar="TYPE")
_glob = click.option("--workspaces", "-w", "glob", default="*", show_default=True, metavar="GLOB",
                     help="The workspaces the schema governs (a glob; '*' is every workspace).")


@click.group("schema", context_settings=CONTEXT_SETTINGS)
def schema() -> None:
    """JSON Schemas (draft 2020-12) that every put of a type must satisfy."""


async def offenders(client: ConfigClient, type_: str, glob: str, text: str | None,
                    min_version: int | None = None) -> tuple[list[Problem], int]:
    """The stored values of ``type_`` in workspaces matching ``glob`` that refuse ``text`` (or, without a
    text, the schemas stored now), and how many values a schema governs."""
    keys = await client.get_keys_all_workspaces_versioned(type_, min_version=min_version)
    workspaces = sorted({ws for ws, _ in keys.value if ws != SCHEMAS_WORKSPACE and fnmatchcase(ws, glob)})
    stored = None if text is not None else await client.get_values(SCHEMAS_WORKSPACE, type_,
                                                                   min_version=keys.version)
    problems: list[Problem] = []
    checked = 0
    for workspace in workspaces:
        schemas = ([(glob, text)] if text is not None else
                   [(g, t) for g, t in (stored or {}).items() if fnmatchcase(workspace, g)])
        if not schemas:
            continue
        for key, value in (await client.get_values(workspace, type_, min_version=keys.version)).items():
            checked += 1
            problem = value_problem(ItemKey(workspace, type_, key), value, schemas)
            if problem is not None:
                problems.append(problem)
    return problems, checked


def _lines(problems: list[Problem]) -> Iterator[str]:
    for problem in problems[:_SHOWN]:
        yield f"{problem.item.workspace}: {problem.message()}"
    if len(problems) > _SHOWN:
        yield f"... and {len(problems) - _SHOWN} more"


def _read_schema(path: Path, type_: str, glob: str) -> str:
    """The schema file's text, refused with one line when it is not a usable JSON Schema."""
    text = path.read_text(encoding="utf-8")
    problem = schema_problem(ItemKey(SCHEMAS_WORKSPACE, type_, glob), text)
    if problem is not None:
        fail(f"{path}: {problem.reason}")
    return text


@schema.command("check", context_settings=CONTEXT_SETTINGS)
@_type
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspaces", "-w", "glob", default="*", show_default=True, metavar="GLOB",
              help="Check the workspaces matching this glob only.")
@timeout_option
@click.pass_context
def check_cmd(ctx: click.Context, type_: str, file: Path | None, glob: str, timeout: float) -> None:
    """Check every stored value of TYPE against FILE (default: against the schemas stored now).

    Prints each value that does not conform and exits 1 if there is any; writes nothing."""
    text = _read_schema(file, type_, glob) if file else None
    problems, checked = call_service(ctx, timeout, lambda c: offenders(c, type_, glob, text))
    for line in _lines(problems):
        click.echo(line)
    if problems:
        fail(f"{len(problems)} of {checked} values of {type_} do not conform")
    click.echo(f"all {checked} values of {type_} conform")


@schema.command("set", context_settings=CONTEXT_SETTINGS)
@_type
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_glob
@click.option("--force", is_flag=True, help="Store it even if existing values do not conform (they stay as they are).")
@actor_option
@timeout_option
@click.pass_context
def set_cmd(ctx: click.Context, type_: str, file: Path, glob: str, force: bool, actor: str | None,
            timeout: float) -> None:
    """Store FILE as the schema of TYPE in the workspaces matching --workspaces.

    Refused, listing the offenders, when existing values would not conform (unless --force). The
    schema is written only if it did not change since the check (compare-and-set)."""
    text = _read_schema(file, type_, glob)

    async def go(client: ConfigClient) -> tuple[list[Problem], int, list[Problem]]:
        current = await client.get_item(SCHEMAS_WORKSPACE, type_, glob)
        problems, _ = await offenders(client, type_, glob, text)
        if problems and not force:
            return problems, 0, []
        version = await client.put(SCHEMAS_WORKSPACE, type_, glob, text,
                                   if_version=current.version if current is not None else 0)
        # Values written between the check and the set were not checked by the writer: look again.
        late, _ = await offenders(client, type_, glob, text, min_version=version)
        return problems, version, [p for p in late if p not in problems]

    problems, version, late = call_service(ctx, timeout, go, default_actor(actor))
    for line in _lines(problems + late):
        stderr.print(line, markup=False)
    if problems and not version:
        fail(f"{len(problems)} existing values of {type_} do not conform; fix them, or store it anyway with --force")
    click.echo(f"schema set: {type_}@{glob} (version {version})")
    if late:
        fail(f"{len(late)} values of {type_} written while the schema was being set do not conform")


@schema.command("get", context_settings=CONTEXT_SETTINGS)
@_type
@_glob
@timeout_option
@click.pass_context
def get_cmd(ctx: click.Context, type_: str, glob: str, timeout: float) -> None:
    """Print the schema of TYPE for --workspaces (exit 1 if there is none)."""
    text = call_service(ctx, timeout, lambda c: c.get(SCHEMAS_WORKSPACE, type_, glob))
    if text is None:
        fail(f"no schema for {type_}@{glob}")
    click.echo(text)


@schema.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@timeout_option
@click.pass_context
def list_cmd(ctx: click.Context, fmt: str, timeout: float) -> None:
    """List the stored schemas (text: TYPE<TAB>GLOB lines; json: {type: {glob: schema}})."""
    config = call_service(ctx, timeout, lambda c: c.get_all(SCHEMAS_WORKSPACE))
    if fmt == "json":
        click.echo(json.dumps({t: {g: shown(s) for g, s in globs.items()} for t, globs in config.items()},
                              indent=2, sort_keys=True))
        return
    for type_, globs in sorted(config.items()):
        for glob in sorted(globs):
            click.echo(f"{type_}\t{glob}")


@schema.command("delete", context_settings=CONTEXT_SETTINGS)
@_type
@_glob
@actor_option
@timeout_option
@click.pass_context
def delete_cmd(ctx: click.Context, type_: str, glob: str, actor: str | None, timeout: float) -> None:
    """Delete the schema of TYPE for --workspaces: its values are no longer checked."""
    version = call_service(ctx, timeout, lambda c: c.delete(SCHEMAS_WORKSPACE, type_, glob), default_actor(actor))
    click.echo(f"schema deleted: {type_}@{glob} (version {version})")

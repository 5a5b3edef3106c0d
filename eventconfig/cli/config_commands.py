"""``eventconfig get|put|delete|list|getvalues|dump``: config items from a shell, through the service.

The output follows the TrustGraph ``tg-*-config-item`` tools (``Configuration item set: t/k``, one key
per line, ``--format json``), with what those tools lacked: a missing key is an error, not ``None``;
every error goes to stderr with exit code 1; writes print the new version and accept ``--if-version``
(compare-and-set); reads accept ``--min-version`` (read your own writes on any replica).

Example::

    eventconfig put -t prompt -k system --value 'You are helpful'     # ... (version 7)
    eventconfig get -t prompt -k system --min-version 7
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from eventconfig.cli.common import (CONTEXT_SETTINGS, actor_option, default_actor, fail, load_settings, run,
                                    timeout_option)
from eventconfig.client import ConfigClient

T = TypeVar("T")
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_workspace = click.option(
    "--workspace", "-w", envvar="EVENTCONFIG_WORKSPACE", default="default", show_default=True, show_envvar=True,
    help="Workspace to read or write.")
_type = click.option("--type", "-t", "type_", required=True, metavar="TYPE",
                     help="Config type, e.g. 'prompt' or 'flow'.")
_key = click.option("--key", "-k", required=True, help="Key within the type.")
_format = click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text",
                       show_default=True, help="Output format.")
_min_version = click.option(
    "--min-version", type=click.IntRange(min=0), metavar="N",
    help="Answer only once the service has applied version N (read your writes); 'timeout' error otherwise.")
_if_version = click.option(
    "--if-version", type=click.IntRange(min=0), metavar="N",
    help="Write only if the key is at version N now (0: only if it does not exist); 'conflict' error otherwise.")


def _options(*decorators: Decorator) -> Decorator:
    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


def call_service(ctx: click.Context, timeout: float, work: Callable[[ConfigClient], Awaitable[T]],
                 actor: str | None = None) -> T:
    """Run ``work`` with a started client; eventconfig errors become ``error: <type>: <message>``, exit 1."""
    settings = load_settings(ctx)

    async def go() -> T:
        async with ConfigClient(settings, timeout=timeout, actor=actor) as client:
            return await work(client)

    return run(go())


def _echo_json(value: Any, **kwargs: Any) -> None:
    click.echo(json.dumps(value, **kwargs))


@click.command("get", context_settings=CONTEXT_SETTINGS)
@_options(_workspace, _type, _key, _format, _min_version, timeout_option)
@click.pass_context
def get_cmd(ctx: click.Context, workspace: str, type_: str, key: str, fmt: str, min_version: int | None,
            timeout: float) -> None:
    """Print the value of one config item (exit 1 if it does not exist)."""
    value = call_service(ctx, timeout, lambda c: c.get(workspace, type_, key, min_version=min_version))
    if value is None:
        fail(f"not found: {type_}/{key}")
    if fmt == "json":
        _echo_json(value)
    else:
        click.echo(value)


@click.command("put", context_settings=CONTEXT_SETTINGS)
@_options(_workspace, _type, _key)
@click.option("--value", "-v", help="The value to store (verbatim).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input (verbatim).")
@_options(_if_version, actor_option, timeout_option)
@click.pass_context
def put_cmd(ctx: click.Context, workspace: str, type_: str, key: str, value: str | None, from_stdin: bool,
            if_version: int | None, actor: str | None, timeout: float) -> None:
    """Set one config item from --value or --stdin; prints the new version."""
    if value is not None and from_stdin:
        raise click.UsageError("give either --value or --stdin, not both")
    if value is None and not from_stdin:
        raise click.UsageError("give the value with --value or --stdin")
    if from_stdin:
        value = sys.stdin.read()
    assert value is not None
    version = call_service(ctx, timeout, lambda c: c.put(workspace, type_, key, value, if_version=if_version),
                           default_actor(actor))
    click.echo(f"Configuration item set: {type_}/{key} (version {version})")


@click.command("delete", context_settings=CONTEXT_SETTINGS)
@_options(_workspace, _type, _key, _if_version, actor_option, timeout_option)
@click.pass_context
def delete_cmd(ctx: click.Context, workspace: str, type_: str, key: str, if_version: int | None,
               actor: str | None, timeout: float) -> None:
    """Delete one config item (a missing key is not an error); prints the new version."""
    version = call_service(ctx, timeout, lambda c: c.delete(workspace, type_, key, if_version=if_version),
                           default_actor(actor))
    click.echo(f"deleted {type_}/{key} (version {version})")


@click.command("list", context_settings=CONTEXT_SETTINGS)
@_options(_workspace, _type, _format, _min_version, timeout_option)
@click.pass_context
def list_cmd(ctx: click.Context, workspace: str, type_: str, fmt: str, min_version: int | None,
             timeout: float) -> None:
    """List the keys of one type, ascending (text: one per line; json: an array)."""
    keys = call_service(ctx, timeout, lambda c: c.keys(workspace, type_, min_version=min_version))
    if fmt == "json":
        _echo_json(keys)
    else:
        for key in keys:
            click.echo(key)


@click.command("getvalues", context_settings=CONTEXT_SETTINGS)
@_options(_workspace, _type, _format, _min_version, timeout_option)
@click.pass_context
def getvalues_cmd(ctx: click.Context, workspace: str, type_: str, fmt: str, min_version: int | None,
                  timeout: float) -> None:
    """Print every key and value of one type (text: key<TAB>value lines; json: an object)."""
    values = call_service(ctx, timeout, lambda c: c.get_values(workspace, type_, min_version=min_version))
    if fmt == "json":
        _echo_json(values)
    else:
        for key, value in values.items():
            click.echo(f"{key}\t{value}")


@click.command("dump", context_settings=CONTEXT_SETTINGS)
@_workspace
@click.option("--type", "-t", "types", multiple=True, metavar="TYPE",
              help="Only these types (repeatable). Without it every type is dumped.")
@click.option("--all-types", is_flag=True, help="Dump every type (the default; cannot be combined with --type).")
@_options(_min_version, timeout_option)
@click.pass_context
def dump_cmd(ctx: click.Context, workspace: str, types: tuple[str, ...], all_types: bool,
             min_version: int | None, timeout: float) -> None:
    """Print a whole workspace as JSON: {type: {key: value}}, sorted ({} when empty)."""
    if types and all_types:
        raise click.UsageError("give either --type or --all-types, not both")
    config = call_service(ctx, timeout, lambda c: c.get_all(workspace, min_version=min_version))
    if types:
        config = {t: config[t] for t in types if t in config}
    _echo_json(config, indent=2, sort_keys=True)


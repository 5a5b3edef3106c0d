"""``eventconfig acls plan|apply``: the least-privilege Kafka ACLs of a deployment's roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, load_settings, run
from eventconfig.kafka.acl_plan import ROLES, Acl, plan
from eventconfig.kafka.acls import apply
from eventconfig.kafka.topics import admin_client


@click.group(context_settings=CONTEXT_SETTINGS)
def acls() -> None:
    """Plan or apply the Kafka ACLs that let a principal play roles of a deployment (nothing more)."""


def _principal(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.startswith("User:") or value == "User:":
        raise click.BadParameter(f"{value!r} must look like User:<name>")
    return value


def _binding_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--principal", "-p", required=True, callback=_principal,
                           help="Kafka principal, e.g. User:config-service.")(command)
    return click.option("--role", "-r", "roles", required=True, multiple=True, type=click.Choice(ROLES),
                        help="Role to grant (repeatable).")(command)


@acls.command("plan")
@_binding_options
@click.pass_context
def plan_cmd(ctx: click.Context, roles: tuple[str, ...], principal: str) -> None:
    """Print the bindings, one a line: principal, permission, operation, resource type, pattern, name."""
    for acl in plan(load_settings(ctx), roles, principal):
        click.echo(acl.line())


@acls.command("apply")
@_binding_options
@click.pass_context
def apply_cmd(ctx: click.Context, roles: tuple[str, ...], principal: str) -> None:
    """Create the planned bindings that are missing (run as a super user); print those created."""
    settings = load_settings(ctx)
    wanted = plan(settings, roles, principal)

    async def go() -> list[Acl]:
        async with admin_client(settings) as admin:
            return await apply(admin, wanted)

    created = run(go())
    for acl in created:
        click.echo(f"created  {acl.line()}")
    click.echo(f"{len(created)} created, {len(wanted) - len(created)} already present")

"""``eventconfig broker start|stop|status``: the local Apache Kafka broker for development."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, fail
from eventconfig.localbroker import BrokerError, LocalBroker
from eventconfig.localbroker.secure import CA_FILE, MECHANISM, ROLE_USERS, SECURITY_PROTOCOL, SUPER_USER

_RUN_DIR = click.option("--run-dir", type=click.Path(path_type=Path), default=Path(".eventconfig/broker"),
                        show_default=True, help="Data, logs and state of the broker.")


@click.group(context_settings=CONTEXT_SETTINGS)
def broker() -> None:
    """Run a local single-node Kafka broker (jars from Maven Central, no Docker)."""


@broker.command()
@_RUN_DIR
@click.option("--port", type=int, default=9092, show_default=True,
              help="Client port on 127.0.0.1 (PLAINTEXT; SASL_PLAINTEXT with --secure).")
@click.option("--heap-mb", type=int, default=768, show_default=True)
@click.option("--timeout", type=float, default=90, show_default=True, help="Seconds to wait until ready.")
@click.option("--secure", is_flag=True, help="SASL/SCRAM-SHA-512 (also over TLS on a second port) and ACLs: a "
              "super user and one user per ACL role, passwords in RUN_DIR/credentials.json (see `broker env`).")
def start(run_dir: Path, port: int, heap_mb: int, timeout: float, secure: bool) -> None:
    """Start the broker (provisioning the jars on first use) and wait until it serves requests."""
    try:
        bootstrap = LocalBroker(run_dir, port=port, heap_mb=heap_mb, secure=secure).start(timeout)
    except BrokerError as exc:
        fail(str(exc))
    click.echo(bootstrap)


@broker.command()
@_RUN_DIR
def stop(run_dir: Path) -> None:
    """Stop the broker gracefully."""
    if not LocalBroker(run_dir).stop():
        click.echo("no broker running", err=True)


@broker.command()
@_RUN_DIR
def status(run_dir: Path) -> None:
    """Print the bootstrap address of the running broker; exit 1 if none runs."""
    state = LocalBroker(run_dir).status()
    if state is None:
        fail("no broker running")
    secure = f" secure={SECURITY_PROTOCOL}/{MECHANISM} tls=127.0.0.1:{state.tls_port}" if state.secure else ""
    click.echo(f"{state.bootstrap} pid={state.pid}{secure}")


@broker.command()
@_RUN_DIR
@click.argument("user", type=click.Choice([SUPER_USER, *ROLE_USERS]))
@click.option("--tls", is_flag=True, help="Connect to the SASL_SSL listener, trusting the broker's CA.")
def env(run_dir: Path, user: str, tls: bool) -> None:
    """Print the environment that connects as USER of a secure broker: eval "$(eventconfig broker env client)"."""
    local = LocalBroker(run_dir)
    creds, state = local.credentials(), local.status()
    if creds is None:
        fail(f"{run_dir} holds no secure broker (start one with --secure)")
    variables = {}
    if state is not None:
        variables["EVENTCONFIG_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{state.tls_port}" if tls else state.bootstrap
    ca_file = local.run_dir / CA_FILE if tls else None
    for name, value in {**variables, **creds.environment(user, ca_file)}.items():
        click.echo(f"export {name}={shlex.quote(value)}")

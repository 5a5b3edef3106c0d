"""``eventconfig broker start|stop|status|env|kill|pause|resume|restart``: the local Apache Kafka broker.

One node by default; ``start --nodes 3`` runs a replicated KRaft cluster on loopback, whose nodes
can be crashed, frozen and brought back one at a time to see how a deployment rides out faults.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, fail
from eventconfig.localbroker import BrokerError, LocalBroker
from eventconfig.localbroker.secure import CA_FILE, MECHANISM, ROLE_USERS, SECURITY_PROTOCOL, SUPER_USER

_RUN_DIR = click.option("--run-dir", type=click.Path(path_type=Path), default=Path(".eventconfig/broker"),
                        show_default=True, help="Data, logs and state of the broker.")
_NODE = click.option("--node", "node_id", type=int, required=True, help="Id of the node (1, 2, 3 ...).")
_TIMEOUT = click.option("--timeout", type=float, default=90, show_default=True, help="Seconds to wait until ready.")


@click.group(context_settings=CONTEXT_SETTINGS)
def broker() -> None:
    """Run a local Kafka broker or a small cluster (jars from Maven Central, no Docker)."""


@broker.command()
@_RUN_DIR
@click.option("--port", type=int, default=None,
              help="Client port on 127.0.0.1 (PLAINTEXT; SASL_PLAINTEXT with --secure; a cluster's first "
                   "node, the others follow). [default: the run dir's, else 9092]")
@click.option("--nodes", type=click.IntRange(1, 5), default=None,
              help="Nodes (broker+controller each); 3 gives replication factor 3, min.insync.replicas 2. "
                   "[default: the run dir's, else 1]")
@click.option("--heap-mb", type=int, default=None, help="Heap per node [default: 768 for one node, 384 for more].")
@_TIMEOUT
@click.option("--secure", is_flag=True, help="SASL/SCRAM-SHA-512 (also over TLS on a second port) and ACLs: a "
              "super user and one user per ACL role, passwords in RUN_DIR/credentials.json (see `broker env`); "
              "one node.")
def start(run_dir: Path, port: int | None, nodes: int | None, heap_mb: int | None, timeout: float,
          secure: bool) -> None:
    """Start the broker (provisioning the jars on first use) and wait until every node serves.

    A stopped broker may be started on another --port (its data stays); a running one must be
    stopped first.
    """
    local = LocalBroker(run_dir, nodes=nodes, heap_mb=heap_mb or _default_heap(nodes), secure=secure or None)
    local.port = port if port is not None else (0 if local.layout() else 9092)
    try:
        bootstrap = local.start(timeout)
    except BrokerError as exc:
        fail(str(exc))
    click.echo(bootstrap)


def _default_heap(nodes: int | None) -> int | None:
    return 768 if nodes in (None, 1) else None  # None: the broker's per-node default for clusters


@broker.command()
@_RUN_DIR
def stop(run_dir: Path) -> None:
    """Stop every node gracefully."""
    if not LocalBroker(run_dir).stop():
        click.echo("no broker running", err=True)


@broker.command()
@_RUN_DIR
def status(run_dir: Path) -> None:
    """Print the bootstrap address and each node (id, port, pid, up/paused/down); exit 1 if none runs."""
    local = LocalBroker(run_dir)
    state = local.status()
    if state is None:
        fail("no broker running")
    secure = f" secure={SECURITY_PROTOCOL}/{MECHANISM} tls=127.0.0.1:{state.tls_port}" if state.secure else ""
    click.echo(f"{state.bootstrap}{secure}")
    for node in state.nodes:
        click.echo(f"node {node.id} port={node.port} controller_port={node.controller_port} pid={node.pid} "
                   f"{local.node_status(node)}")


def _node_command(name: str, summary: str, done: str) -> None:
    """One fault command on one node: kill, pause or resume."""

    @broker.command(name=name, help=summary)
    @_RUN_DIR
    @_NODE
    def command(run_dir: Path, node_id: int) -> None:
        local = LocalBroker(run_dir)
        try:
            acted = getattr(local, name)(node_id)
        except BrokerError as exc:
            fail(str(exc))
        if not acted:
            fail(f"node {node_id} is not running")
        click.echo(f"node {node_id} {done}")


_node_command("kill", "Kill one node at once (SIGKILL), as a crash would; `broker start` brings it back.", "killed")
_node_command("pause", "Freeze one node (SIGSTOP), as a long GC pause would; `broker resume` thaws it.", "paused")
_node_command("resume", "Let a paused node run again (SIGCONT).", "resumed")


@broker.command()
@_RUN_DIR
@_NODE
@_TIMEOUT
def restart(run_dir: Path, node_id: int, timeout: float) -> None:
    """Stop one node gracefully (if it runs), start it again and wait until the broker serves."""
    try:
        click.echo(LocalBroker(run_dir).restart(node_id, timeout))
    except BrokerError as exc:
        fail(str(exc))


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

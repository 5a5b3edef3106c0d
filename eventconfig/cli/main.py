"""Entry point of the ``eventconfig`` command and the options every command shares.

Connection options go before the command (``eventconfig --bootstrap-servers h:9092 topics check``)
or come from ``EVENTCONFIG_*`` environment variables; a given flag wins over the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from eventconfig.cli import (acls, bootstrap_command, broker, config_commands, gateway_command, history_commands, keys,
                             schema_commands, serve, topics, transfer_commands, view_commands, watch)
from eventconfig.cli.common import CONTEXT_SETTINGS, CommandGroup
from eventconfig.logs import setup_logging


@click.group(cls=CommandGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--bootstrap-servers", "-b", help="Kafka bootstrap servers [env EVENTCONFIG_BOOTSTRAP_SERVERS].")
@click.option("--topic-prefix", help="Prefix of the six topics (default 'eventconfig').")
@click.option("--deployment", help="Name of consumer groups and transactional ids (default: the prefix).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder of the local RocksDB view.")
@click.option("--security-protocol", type=click.Choice(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]))
@click.option("--sasl-mechanism", help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 ...")
@click.option("--sasl-username")
@click.option("--sasl-password", help="Prefer EVENTCONFIG_SASL_PASSWORD; flags show in process lists.")
@click.option("--ssl-cafile", type=click.Path(dir_okay=False))
@click.option("--ssl-certfile", type=click.Path(dir_okay=False))
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False))
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.version_option(package_name="eventconfig")
@click.pass_context
def cli(ctx: click.Context, log_level: str, log_format: str, **overrides: Any) -> None:
    """eventconfig: an event-sourced configuration service on Apache Kafka."""
    setup_logging(log_level, log_format)
    ctx.obj = overrides


cli.add_command(broker.broker)
cli.add_command(acls.acls)
cli.add_command(topics.topics)
cli.add_command(serve.serve)
cli.add_command(serve.project)
cli.add_command(watch.watch)
cli.add_command(config_commands.get_cmd)
cli.add_command(config_commands.put_cmd)
cli.add_command(config_commands.delete_cmd)
cli.add_command(config_commands.list_cmd)
cli.add_command(config_commands.getvalues_cmd)
cli.add_command(config_commands.dump_cmd)
cli.add_command(bootstrap_command.bootstrap_cmd)
cli.add_command(history_commands.history_cmd)
cli.add_command(history_commands.state_cmd)
cli.add_command(history_commands.diff_cmd)
cli.add_command(view_commands.rebuild_cmd)
cli.add_command(view_commands.verify_cmd)
cli.add_command(transfer_commands.export_cmd)
cli.add_command(transfer_commands.import_cmd)
cli.add_command(schema_commands.schema)
cli.add_command(gateway_command.gateway_cmd)
cli.add_command(gateway_command.gateway_secret_cmd)
cli.add_command(keys.keys)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)

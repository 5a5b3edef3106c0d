"""``eventconfig bootstrap -c FILE [--once]``: converge a deployment to its initialisers, then keep it there.

Without ``--once`` it runs until SIGTERM/SIGINT, waking every few seconds while converging and every
few minutes once steady. ``--once`` runs one wake, prints what happened to each initialiser and exits
0 only if every initialiser ran or was already done (for init jobs and CI).

Example::

    eventconfig bootstrap -c examples/bootstrap.yaml --once
"""

from __future__ import annotations

from pathlib import Path

import click

from eventconfig.bootstrap import Bootstrapper, Cadence, CycleReport
from eventconfig.cli.common import CONTEXT_SETTINGS, fail, load_settings, run, until_signal
from eventconfig.errors import EventConfigError

_defaults = Cadence()
_seconds = click.FloatRange(min=0, min_open=True)


@click.command("bootstrap", context_settings=CONTEXT_SETTINGS)
@click.option("--initialisers-file", "-c", "path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="YAML (.yaml/.yml) or JSON file with an 'initialisers' list.")
@click.option("--once", is_flag=True, help="Run one wake, print the outcome, exit 1 unless everything is done.")
@click.option("--gate-backoff", type=_seconds, default=_defaults.gate_down, show_default=True, metavar="SECONDS",
              help="Sleep after a wake whose service gate was closed.")
@click.option("--retry-interval", type=_seconds, default=_defaults.converging, show_default=True, metavar="SECONDS",
              help="Sleep after a wake in which something ran or failed.")
@click.option("--steady-interval", type=_seconds, default=_defaults.steady, show_default=True, metavar="SECONDS",
              help="Sleep after a wake in which everything was already done.")
@click.option("--gate-timeout", type=_seconds, default=_defaults.gate_timeout, show_default=True, metavar="SECONDS",
              help="How long the service gate (connect + one config read) may take.")
@click.pass_context
def bootstrap_cmd(ctx: click.Context, path: Path, once: bool, gate_backoff: float, retry_interval: float,
                  steady_interval: float, gate_timeout: float) -> None:
    """Run the initialisers of FILE: Kafka topics first, then config seeding once the service answers."""
    cadence = Cadence(gate_down=gate_backoff, converging=retry_interval, steady=steady_interval,
                      gate_timeout=gate_timeout)
    try:  # built before the loop starts: a bad entry is a clear error and exit 1, never a retry loop
        bootstrapper = Bootstrapper.from_file(load_settings(ctx), path, cadence=cadence)
    except EventConfigError as exc:
        fail(str(exc))
    if once:
        report = run(bootstrapper.run_once())
        _print_report(report)
        if not report.complete:
            fail(f"not converged: {len(report.failed)} failed, {len(report.held)} held back by the service gate")
        return
    async def stop() -> None:
        bootstrapper.stop()  # the wake in progress finishes first

    run(until_signal(_nothing, bootstrapper.run, stop, graceful=True))


async def _nothing() -> None:
    pass


def _print_report(report: CycleReport) -> None:
    width = max((len(r.name) for r in report.results), default=0)
    for result in report.results:
        click.echo(f"{result.name:<{width}}  {result.status.value:<7}  {result.reason}")

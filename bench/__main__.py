"""``python -m bench``: measure eventconfig against the docs/design.md §10 goals and print the table.

Uses the broker at ``EVENTCONFIG_BOOTSTRAP_SERVERS`` when it is reachable (``make bench``), else
starts an own LocalBroker in a temporary folder. Every run uses fresh topics (a unique prefix) and
deletes them at the end. The service runs in its own process, the client load in worker processes.

    python -m bench                  # full run (a few minutes)
    python -m bench --peer etcd      # and etcd (Debian etcd-server) in the same run, with ratios
    python -m bench --quick          # smaller sizes, ~1-2 minutes
    python -m bench --only fleet --subscribers 1000  # a fleet of subscribers (own connections each), one writer
    python -m bench --only fleet --peer etcd         # and as many etcd watchers, one client each
    python -m bench --only sse --streams 1000        # event streams on one gateway process
    python -m bench --only put64,get1 --json results.json
    python -m bench --quick --only put64,get64 --profile /tmp/prof   # py-spy: where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from eventconfig.localbroker import prewarm

from bench.compare import add_peer, floor_ratios
from bench.cpu import listener_pid
from bench.env import (RUN_ID, ServiceProcess, broker_for_bench, create_deployment_topics, free_port,
                       delete_deployment_topics, deployment)
from bench.etcd_server import EtcdServer, PeerUnavailable
from bench.peer import PEER_LOADS, measure_etcd
from bench.profiling import PROFILED, RATE_HZ, Profiler, ProfilerUnavailable
from bench.report import Row, print_table, write_json
from bench.scenarios import (ALL_SCENARIOS, LOG_SCENARIOS, SERVICE_SCENARIOS, BenchConfig, ServiceContext,
                             warm_up)

console = Console(stderr=True, highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter windows (~1-2 min)")
    parser.add_argument("--only", metavar="NAME[,NAME]", default="",
                        help=f"run only these scenarios: {', '.join(ALL_SCENARIOS)}")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the results as JSON")
    parser.add_argument("--client-procs", type=int, default=4,
                        help="client processes the 64 concurrent loops are spread over (default 4)")
    parser.add_argument("--shared-client", action="store_true",
                        help="one ConfigClient per client process instead of one per loop")
    parser.add_argument("--peer", choices=["none", "etcd"], default="none",
                        help="also run the put/get loads against this peer in the same run (etcd: the "
                             "`etcd` binary on PATH, the `aetcd` client of the `bench` extra)")
    parser.add_argument("--subscribers", type=int, help="ConfigSubscribers of the fleet scenario (default 200, "
                                                          "--quick 60)")
    parser.add_argument("--streams", type=int, help="/v1/watch streams of the sse scenario (default 1000, "
                                                      "--quick 200)")
    parser.add_argument("--fleet-per-process", type=int,
                        help="subscribers (and etcd watchers) per worker process of the fleet scenario (default 125)")
    parser.add_argument("--fleet-partitions", type=int,
                        help="response partitions for the fleet scenario (default 2 x subscribers)")
    parser.add_argument("--duration", type=float, help="measurement window of each load scenario, seconds")
    parser.add_argument("--no-projector", action="store_true",
                        help="run the service without its push projector (diagnosis; skips the poke scenario)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help=f"py-spy (the `bench` extra; needs ptrace) samples the service and one client "
                             f"process during the window of {', '.join(PROFILED)}: DIR/<scenario>-<process>.txt "
                             "(collapsed stacks) and .speedscope.json, and rows saying where the time goes")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp folder (service log, probe)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ALL_SCENARIOS)
    unknown = sorted(set(names) - set(ALL_SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ALL_SCENARIOS)}")
    if args.profile and not set(names) & set(PROFILED):
        parser.error(f"--profile records the windows of {', '.join(PROFILED)}; none of them is selected")
    args.names = names
    return args


def make_config(args: argparse.Namespace) -> BenchConfig:
    overrides: dict[str, Any] = {"client_procs": args.client_procs, "client_per_loop": not args.shared_client,
                                 "peer": args.peer}
    if args.duration:
        overrides["duration_s"] = args.duration
    if args.subscribers:
        overrides["subscribers"] = args.subscribers
    if args.streams:
        overrides["sse_streams"] = args.streams
    if args.fleet_per_process:
        overrides["fleet_per_process"] = args.fleet_per_process
    if args.fleet_partitions:
        overrides["fleet_partitions"] = args.fleet_partitions
    return BenchConfig.quick_config(**overrides) if args.quick else BenchConfig(**overrides)


async def run_service_scenarios(names: list[str], bootstrap: str, workdir: Path, cfg: BenchConfig,
                                projector: bool, profiler: Profiler | None) -> list[Row]:
    """Start one service process on a fresh deployment and run the selected service scenarios on it."""
    settings = dataclasses.replace(deployment(bootstrap, workdir, "svc"), metrics_port=free_port())
    await create_deployment_topics(settings)
    service = ServiceProcess(settings, workdir / "probe.jsonl", workdir / "service.log", projector=projector)
    rows: list[Row] = []
    try:
        took = await service.start()
        console.print(f"service process ready in {took:.1f} s (topic prefix {settings.topic_prefix})")
        port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
        ctx = ServiceContext(settings, service, workdir, broker_pid=listener_pid(port), profiler=profiler)
        console.print(f"warming up (unmeasured 64-client puts, {cfg.service_warmup_s:g} s) ...")
        await warm_up(ctx, cfg)
        for name in names:
            rows.extend(await _run_one(name, SERVICE_SCENARIOS[name](ctx, cfg)))
    finally:
        service.stop()
        await delete_deployment_topics(settings)
    return rows


async def _run_one(name: str, scenario: Any) -> list[Row]:
    console.print(f"[cyan]▶ {name}[/] ...")
    started = time.monotonic()
    try:
        rows: list[Row] = await scenario
    except Exception as exc:  # noqa: BLE001 - one failed scenario is reported, the others still run
        console.print(f"[red]✗ {name} failed: {type(exc).__name__}: {exc}[/]")
        return [Row(name, "scenario failed", None, "", note=f"{type(exc).__name__}: {exc}", valid=False)]
    console.print(f"[green]✓ {name}[/] in {time.monotonic() - started:.1f} s")
    return rows


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path, profiler: Profiler | None) -> list[Row]:
    cfg = make_config(args)
    await prewarm(bootstrap)
    rows: list[Row] = []
    service_names = [n for n in args.names if n in SERVICE_SCENARIOS and not (n == "poke" and args.no_projector)]
    if service_names:
        rows.extend(await run_service_scenarios(service_names, bootstrap, workdir, cfg, not args.no_projector,
                                                profiler))
    for name in (n for n in args.names if n in LOG_SCENARIOS):
        rows.extend(await _run_one(name, LOG_SCENARIOS[name](workdir, bootstrap, cfg)))
    if args.peer == "etcd" and set(args.names) & set(PEER_LOADS):  # the fleet scenario runs its own etcd
        rows = await with_etcd(rows, args.names, workdir, cfg)
    return [*rows, *floor_ratios(rows)]


async def with_etcd(rows: list[Row], names: list[str], workdir: Path, cfg: BenchConfig) -> list[Row]:
    """Run the same loads against a fresh etcd and add its figures and the ratios to ``rows``."""
    console.print("[cyan]▶ etcd[/] (same loads, same machine) ...")
    try:
        async with EtcdServer.start(workdir) as etcd:
            console.print(f"  {etcd.version} at {etcd.endpoint}")
            runs = await measure_etcd(etcd, names, cfg)
    except PeerUnavailable as exc:
        console.print(f"[red]✗ etcd: {exc}[/]")
        return [*rows, Row("etcd", "peer", None, "", note=str(exc), valid=False)]
    return add_peer(rows, runs, cfg.duration_s)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        profiler = Profiler.prepare(args.profile) if args.profile else None
    except ProfilerUnavailable as exc:
        sys.exit(f"error: --profile: {exc}")
    started, load_before = time.monotonic(), os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix=f"eventconfig-bench-{RUN_ID}-"))
    try:
        with broker_for_bench(workdir) as broker:
            console.print(f"broker: {broker.description}; workdir {workdir}")
            rows = asyncio.run(run(args, broker.bootstrap, workdir, profiler))
    finally:
        if not args.keep_workdir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    header = {"mode": "quick" if args.quick else "full", "cores (nproc)": len(os.sched_getaffinity(0)),
              "python": platform.python_version(), "broker": broker.description,
              "service": "separate process (ConfigService + batch probe"
                         + (", NO projector)" if args.no_projector else ", with push projector)"),
              "clients": f"worker processes ({args.client_procs} for the concurrent runs, "
                         + ("one ConfigClient per process)" if args.shared_client else "one client per loop)"),
              "peer": args.peer,
              **({"profile": f"py-spy {RATE_HZ} Hz, nonblocking, into {args.profile} (its CPU counts as other "
                             "processes)"} if profiler else {}),
              "load average (1/5/15 min) before / after": "{:.1f}/{:.1f}/{:.1f} / {:.1f}/{:.1f}/{:.1f}".format(
                  *load_before, *os.getloadavg()),
              "took": f"{time.monotonic() - started:.0f} s"}
    print_table(rows, header, Console(width=None if sys.stdout.isatty() else 230))
    if args.json:
        write_json(args.json, rows, header)


if __name__ == "__main__":
    main()

"""The scenarios of the benchmark, each returning result rows for the docs/design.md §10 table.

Service scenarios (``put1``, ``put64``, ``get1``, ``get64``) drive the service process through
:class:`~eventconfig.client.ConfigClient` loops in separate client processes, ``fleet`` runs many
:class:`~eventconfig.client.ConfigSubscriber` instances in such processes against one writer; log scenarios
(``replay``, ``restart``) time a :class:`~eventconfig.view.materializer.Materializer` in this process.

Example::

    cfg = BenchConfig.quick_config()
    rows = await put_concurrent(ctx, cfg)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import NewPartitions

from eventconfig.client import ConfigClient
from eventconfig.codec import default_codec
from eventconfig.kafka.reading import committed_consumer
from eventconfig.kafka.topics import admin_client
from eventconfig.settings import Settings

from bench import cpu, replay
from bench.fleet import FLEET_KEY, FleetSpec
from bench.fleet_rows import fleet_rows
from bench.fleet_run import FleetPlan, FleetSide, etcd_fleet, run_fleet
from bench.sse import sse_streams
from bench.auth import auth_rows
from bench.validation import validation_rows
from bench.floor import floor_rows
from bench.env import (ServiceProcess, create_deployment_topics, delete_deployment_topics, deployment, free_port,
                       read_topic_answers, read_topic_partitions, settings_env)
from bench.load import TYPE, WORKSPACE, LoadSpec, LoadStats, make_key, make_values, preload
from bench.profiling import ProcessProfile, Profiler, WindowProfile, profile_rows
from bench.report import Goal, Row, percentile, summarize_ms

# etcd on a machine of this kind, measured once; shown only when ``--peer etcd`` did not run.
ETCD = {"put1": "≈ 1,200/s (reference, not this run)", "put64": "≈ 11,000/s (reference, not this run)",
        "get1": "≈ 2,000/s (reference, not this run)", "get64": "≈ 9,000/s (reference, not this run)"}


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and durations of one run (``--quick`` shrinks them)."""

    warmup_s: float = 2.0
    duration_s: float = 10.0
    service_warmup_s: float = 8.0  # unmeasured 64-client puts first: JIT-compiles a fresh broker JVM
    clients: int = 64
    client_procs: int = 4
    client_per_loop: bool = True  # 64 clients = 64 separate ConfigClient instances, as in a fleet
    get_key_space: int = 100
    replay_items: int = 200_000
    restart_keys: int = 1_000_000
    view_gets: int = 200_000
    history_mutations: int = 20_000
    auth_requests: int = 2_000
    subscribers: int = 200  # the fleet scenario's ConfigSubscribers
    fleet_partitions: int = 0  # response partitions for the fleet; 0: 2 x subscribers (the sizing rule)
    fleet_per_process: int = 125  # subscribers (and etcd watchers) per worker process
    fleet_writes: int = 20
    fleet_interval_s: float = 1.0  # between the fleet's writes, so each one's deliveries are seen alone
    peer: str = "none"  # "etcd": the fleet scenario runs as many etcd watchers too
    sse_streams: int = 1_000  # the sse scenario's /v1/watch streams on one gateway
    sse_writes: int = 20
    fleet_idle_s: float = 10.0  # before the writes: the idle fleet's CPU is measured this long

    @classmethod
    def quick_config(cls, **overrides: Any) -> BenchConfig:
        return cls(**{**asdict(cls(warmup_s=1.0, duration_s=4.0, service_warmup_s=4.0, replay_items=50_000,
                                   restart_keys=200_000, view_gets=100_000, history_mutations=5_000,
                                   auth_requests=500,
                                   subscribers=60, fleet_writes=10, sse_streams=200, sse_writes=10)),
                    **overrides})


@dataclass
class ServiceContext:
    """The running service deployment the service scenarios share."""

    settings: Settings
    service: ServiceProcess
    workdir: Path
    broker_pid: int = 0
    preloaded: bool = False
    profiler: Profiler | None = None  # --profile: py-spy records the windows of the load scenarios

    def load(self, profile_as: str = "") -> Load:
        """Where a load goes; ``profile_as`` names the scenario whose window is profiled (with --profile)."""
        pids = {"service": self.service.pid, **({"broker": self.broker_pid} if self.broker_pid else {})}
        profile = (WindowProfile(self.profiler, profile_as, {"service": self.service.pid})
                   if self.profiler and profile_as else None)
        return Load(settings_env(self.settings), pids, profile=profile)


@dataclass(frozen=True)
class Load:
    """Where the worker processes send their requests, and whose CPU use is sampled meanwhile."""

    env: dict[str, str]
    pids: dict[str, int]  # e.g. {"service": pid, "broker": pid} or {"etcd": pid}
    target: str = "eventconfig"
    etcd: str = ""
    profile: WindowProfile | None = None  # py-spy on the service and the first worker during the window


# --- client processes -----------------------------------------------------------------------------


@dataclass
class LoadRun:
    """What a load run measured: the merged loop stats, its wall-clock window and CPU use in it."""

    stats: LoadStats
    since: float
    until: float
    cpu: dict[str, float]
    profiles: list[ProcessProfile] = field(default_factory=list)  # with --profile


async def _spawn_worker(load: Load, spec: LoadSpec) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.worker", json.dumps(asdict(spec)), env=load.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)


async def _cpu_in_window(pids: dict[str, int], since: float, until: float) -> dict[str, float]:
    """Sample CPU use between two wall-clock instants, per named process, all clients together, and
    ``other_pct``: the rest of the machine."""
    await asyncio.sleep(max(0.0, since - time.time()))
    before = cpu.sample(pids)
    await asyncio.sleep(max(0.0, until - time.time()))
    used = cpu.usage(before, cpu.sample(pids))
    result = {k: v for k, v in used.items() if not k.startswith("client")}
    result["clients_pct"] = sum(v for k, v in used.items() if k.startswith("client"))
    known = sum(v for k, v in result.items() if k != "machine_busy_pct")
    result["other_pct"] = result["machine_busy_pct"] - known
    return result


async def _result(worker: asyncio.subprocess.Process, kind: str, timeout: float) -> dict[str, Any]:
    """The JSON of the last ``RESULT`` line a worker prints before it exits."""
    out, _ = await asyncio.wait_for(worker.communicate(), timeout)
    result = [ln for ln in out.decode().splitlines() if ln.startswith("RESULT ")]
    if not result:
        raise RuntimeError(f"{kind} worker exited {worker.returncode} without a result")
    return dict(json.loads(result[-1][len("RESULT "):]))


async def _reap(workers: list[asyncio.subprocess.Process]) -> None:
    """Kill the workers still running (a failed run) and wait for them."""
    for worker in workers:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` unless it finished (a failed run stops its profilers), and wait for it."""
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def run_workers(load: Load, op: str, loops: int, procs: int, cfg: BenchConfig, seed: int) -> LoadRun:
    """Run ``loops`` request loops spread over ``procs`` worker processes, all in one time window;
    with ``cfg.client_per_loop`` every loop has its own client, else each process shares one."""
    procs = max(1, min(procs, loops))
    share = [loops // procs + (1 if i < loops % procs else 0) for i in range(procs)]
    workers = []
    profiling: asyncio.Task[list[ProcessProfile]] | None = None
    for i, count in enumerate(share):
        offset = sum(share[:i])
        workers.append(await _spawn_worker(load, LoadSpec(
            op=op, loops=count, warmup=cfg.warmup_s, duration=cfg.duration_s, start_at=0.0,
            loop_offset=offset, key_space=cfg.get_key_space, seed=seed + offset,
            clients=count if cfg.client_per_loop else 1, target=load.target, etcd=load.etcd)))
    try:
        for worker in workers:
            line = await asyncio.wait_for(worker.stdout.readline(), 120)  # type: ignore[union-attr]
            if line.strip() != b"READY":
                raise RuntimeError(f"load worker failed to start: {line!r}")
        start_at = time.time() + 0.3
        since = start_at + cfg.warmup_s
        until = since + cfg.duration_s
        pids = {**load.pids, **{f"client{i}": w.pid for i, w in enumerate(workers)}}
        sampler = asyncio.create_task(_cpu_in_window(pids, since, until))
        if load.profile is not None:
            profiling = load.profile.start(workers[0].pid, since, until)
        for worker in workers:
            worker.stdin.write(f"{start_at}\n".encode())  # type: ignore[union-attr]
            await worker.stdin.drain()  # type: ignore[union-attr]
        total = LoadStats()
        for worker in workers:
            total.merge(LoadStats(**await _result(worker, "load", cfg.warmup_s + cfg.duration_s + 60)))
        used = await sampler
        profiles = await profiling if profiling is not None else []
    finally:
        await _cancel(profiling)
        await _reap(workers)
    return LoadRun(total, since, until, used, profiles)


def cpu_note(used: dict[str, float]) -> str:
    parts = [f"{name[:-4]} {pct:.0f}%" for name, pct in used.items()
             if name.endswith("_pct") and name not in ("machine_busy_pct", "other_pct")]
    return (f"CPU (100% = 1 core): {', '.join(parts)}, other processes {used['other_pct']:.0f}%, "
            f"machine {used['machine_busy_pct']:.0f}% of {100 * len(os.sched_getaffinity(0))}%")


def _error_note(stats: LoadStats) -> str:
    return f"{stats.errors} errors (first: {stats.first_error})" if stats.errors else ""


def batch_profile(ctx: ServiceContext, since: float, until: float) -> dict[str, Any]:
    """Writer batch statistics (and the projector's transaction rate) from the service's probe log."""
    entries = ctx.service.batches(since, until)
    batches = [b for b in entries if b.get("role") == "writer"]
    if not batches:
        return {}
    window = max(until - since, 1e-9)
    sizes = [b["requests"] for b in batches]
    profile: dict[str, Any] = {"batches": len(batches), "batches_per_s": len(batches) / window,
                               "requests_per_batch_mean": statistics.fmean(sizes),
                               "requests_per_batch_p50": percentile(sizes, 50), "requests_per_batch_max": max(sizes)}
    for phase in PHASES:
        values = [b[phase] for b in batches]
        profile[phase] = {"mean": statistics.fmean(values), "p50": percentile(values, 50),
                          "p99": percentile(values, 99)}
    projector = [b for b in entries if b.get("role") == "projector"]
    profile["projector_tx_per_s"] = len(projector) / window
    if projector:
        profile["projector_commit_ms_mean"] = statistics.fmean(
            b["enqueue_ms"] + b["produce_ms"] + b["offsets_ms"] + b["end_ms"] for b in projector)
    return profile


PHASES = ("gap_ms", "handle_ms", "enqueue_ms", "produce_ms", "offsets_ms", "end_ms")


def profile_note(profile: dict[str, Any]) -> str:
    if not profile:
        return "no probe data"
    phases = " ".join(f"{p[:-3]} {profile[p]['mean']:.1f}" for p in PHASES)
    note = (f"writer: {profile['batches_per_s']:.0f} tx/s, {profile['requests_per_batch_mean']:.1f} req/tx "
            f"(max {profile['requests_per_batch_max']}); ms/tx: {phases}")
    if profile.get("projector_tx_per_s"):
        note += (f"; projector {profile['projector_tx_per_s']:.0f} tx/s, "
                 f"{profile.get('projector_commit_ms_mean', 0):.1f} ms each")
    return note


# --- service scenarios ----------------------------------------------------------------------------


async def warm_up(ctx: ServiceContext, cfg: BenchConfig) -> None:
    """Unmeasured 64-client puts: the broker JVM and the service reach steady state before measuring."""
    if cfg.service_warmup_s > 0:
        await run_workers(ctx.load(), "put", cfg.clients, cfg.client_procs,
                          replace(cfg, warmup_s=0.0, duration_s=cfg.service_warmup_s), seed=99)


def _throughput_row(scenario: str, metric: str, run: LoadRun, cfg: BenchConfig, goal: Goal | None,
                    etcd: str, prefix: str = "") -> Row:
    lat = summarize_ms(run.stats.latencies_ms)
    note = "; ".join(filter(None, [prefix, f"p50 {lat.get('p50', float('nan')):.1f} ms, "
                                           f"p99 {lat.get('p99', float('nan')):.1f} ms",
                                   cpu_note(run.cpu), _error_note(run.stats)]))
    return Row(scenario, metric, run.stats.completed / cfg.duration_s, "req/s", goal, etcd=etcd, note=note,
               valid=run.stats.errors == 0, extra={"latency_ms": lat, "cpu": run.cpu})


# Before issue 9's work the broker spent 117 % of a core on 114 one-client puts/s: 10.3 ms per put.
BROKER_MS_PER_PUT_BEFORE = 10.3


def _broker_per_put_row(scenario: str, run: LoadRun, cfg: BenchConfig, goal: Goal | None) -> Row:
    """The broker's CPU per put (ms of one core), against the figure before issue 9's work."""
    value = cpu.cpu_per_request(run.cpu, ["broker"], run.stats.completed, cfg.duration_s)
    ratio = f"{value / BROKER_MS_PER_PUT_BEFORE:.2f} × the {BROKER_MS_PER_PUT_BEFORE} ms of one-client puts " \
        "before the writer's rework" if value is not None else "the broker's pid is unknown"
    return Row(scenario, "broker CPU per put", value, "ms", goal, note=ratio)


def _profile_row(scenario: str, what: str, ctx: ServiceContext, run: LoadRun) -> Row:
    profile = batch_profile(ctx, run.since, run.until)
    return Row(scenario, f"writer transactions ({what})", profile.get("requests_per_batch_mean"), "req/tx",
               note=profile_note(profile), extra=profile)


async def put_sequential(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """One client, one request in flight: put throughput and round trip."""
    run = await run_workers(ctx.load("put1"), "put", 1, 1, cfg, seed=1)
    lat = summarize_ms(run.stats.latencies_ms)
    return [
        _throughput_row("put1", "put throughput, 1 client (sequential)", run, cfg, None, ETCD["put1"]),
        Row("put1", "put round trip p50, 1 client", lat.get("p50"), "ms", Goal("<=", 10), etcd="p50 0.6 ms"),
        Row("put1", "put round trip p99, 1 client", lat.get("p99"), "ms"),
        _broker_per_put_row("put1", run, cfg, Goal("<=", BROKER_MS_PER_PUT_BEFORE / 4)),
        _profile_row("put1", "1-client put", ctx, run),
        *profile_rows(run.profiles, run.cpu, client_procs=1),
    ]


async def put_concurrent(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """64 concurrent request loops (spread over client processes): group-commit throughput."""
    run = await run_workers(ctx.load("put64"), "put", cfg.clients, cfg.client_procs, cfg, seed=2)
    spread = (f"{cfg.clients} loops over {min(cfg.client_procs, cfg.clients)} client processes, "
              + ("a ConfigClient per loop" if cfg.client_per_loop else "1 ConfigClient per process"))
    return [_throughput_row("put64", f"put throughput, {cfg.clients} clients", run, cfg, Goal(">=", 5000),
                            ETCD["put64"], spread),
            _broker_per_put_row("put64", run, cfg, None),
            _profile_row("put64", f"{cfg.clients}-client put", ctx, run),
            *profile_rows(run.profiles, run.cpu, min(cfg.client_procs, cfg.clients))]


WARM_READS = "warm: the keys were written just before (the view's memtable or the OS page cache holds them)"


async def floor(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """The two-hop and commit floor of the architecture, bare aiokafka on the same broker."""
    return await floor_rows(ctx.settings, cfg.duration_s, ctx.broker_pid)


async def _ensure_preloaded(ctx: ServiceContext, cfg: BenchConfig) -> None:
    if ctx.preloaded:
        return
    async with ConfigClient(ctx.settings, timeout=60) as client:
        await preload(client, cfg.clients, cfg.get_key_space, make_values(64, seed=3))
    ctx.preloaded = True


async def get_sequential(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """One client reading existing keys: get round trip."""
    await _ensure_preloaded(ctx, cfg)
    run = await run_workers(ctx.load("get1"), "get", 1, 1, cfg, seed=3)
    lat = summarize_ms(run.stats.latencies_ms)
    return [
        _throughput_row("get1", "get throughput, 1 client (sequential)", run, cfg, None, ETCD["get1"], WARM_READS),
        Row("get1", "get round trip p50, 1 client", lat.get("p50"), "ms", Goal("<=", 5)),
        Row("get1", "get round trip p99, 1 client", lat.get("p99"), "ms", Goal("<=", 20)),
        *profile_rows(run.profiles, run.cpu, client_procs=1),
    ]


async def get_concurrent(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """64 concurrent readers (reads go where ConfigClient sends them by default: the read topic, answered by
    the one serve process in no transaction, docs/design.md §6; no writer-transaction row)."""
    await _ensure_preloaded(ctx, cfg)
    run = await run_workers(ctx.load("get64"), "get", cfg.clients, cfg.client_procs, cfg, seed=4)
    return [_throughput_row("get64", f"get throughput, {cfg.clients} clients", run, cfg, None, ETCD["get64"],
                            WARM_READS),
            *profile_rows(run.profiles, run.cpu, min(cfg.client_procs, cfg.clients))]


READ_TOPIC_ENV = {"EVENTCONFIG_CLIENT_READS_ON_READ_TOPIC": "1"}


async def reads_per_process(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """Gets through the read topic (docs/design.md §6) with one ``serve`` process, then with a second one
    (a standby for the writer role): the throughput of each run and the share of reads each process
    answered, from each process's ``eventconfig_read_topic_answers_total``."""
    await _ensure_preloaded(ctx, cfg)
    first = ctx.settings.metrics_port
    rows = await _read_run(ctx, cfg, {"service": first}, ctx.load("reads"))
    second = ServiceProcess(replace(ctx.settings, data_dir=ctx.workdir / "second-view", metrics_port=free_port()),
                            ctx.workdir / "second-probe.jsonl", ctx.workdir / "second-service.log", projector=False)
    try:
        await second.start()
        await _wait_sharing_reads([first, second.settings.metrics_port])
        load = ctx.load("reads")
        rows += await _read_run(ctx, cfg, {"service": first, "service2": second.settings.metrics_port},
                                replace(load, pids={**load.pids, "service2": second.pid}))
    finally:
        second.stop()
    return rows


async def _read_run(ctx: ServiceContext, cfg: BenchConfig, ports: dict[str, int], load: Load) -> list[Row]:
    before = {name: read_topic_answers(port) for name, port in ports.items()}
    run = await run_workers(replace(load, env={**load.env, **READ_TOPIC_ENV}), "get", cfg.clients, cfg.client_procs,
                            cfg, seed=5)
    answered = {name: read_topic_answers(port) - before[name] for name, port in ports.items()}
    total = max(1, sum(answered.values()))
    n = len(ports)
    rows = [_throughput_row("reads", f"get throughput via the read topic, {cfg.clients} clients, {n} serve "
                            f"process{'es' if n > 1 else ''}", run, cfg, None, ETCD["get64"], WARM_READS)]
    for i, count in enumerate(answered.values(), 1):
        goal = Goal(">=", 30) if n == 2 else None
        rows.append(Row("reads", f"reads answered by process {i} of {n}", 100 * count / total, "%", goal,
                        note=f"{count:,} of {total:,} reads" + (" (goal 30-70 %)" if n == 2 else "")))
    return rows


async def _wait_sharing_reads(ports: list[int], timeout: float = 120) -> None:
    """Until each process serving metrics on ``ports`` holds partitions of the read topic (a process that
    joins gets them at the readers' group's next rebalance); raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while not all(_holds_reads(port) for port in ports):
        if time.monotonic() > deadline:
            raise TimeoutError("the serve processes did not share the read topic's partitions")
        await asyncio.sleep(0.1)


def _holds_reads(port: int) -> bool:
    try:
        return read_topic_partitions(port) > 0
    except OSError:  # its metrics are not served yet (it started after another process answered)
        return False


async def _collect_pokes(consumer: Any, arrivals: list[tuple[int, float]]) -> None:
    """Record (version, arrival time) of every poke on the notify topic."""
    codec = default_codec()
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in batches.values():
            arrivals.extend((int(codec.decode("ConfigPush", r.value)["version"]), now) for r in records)


def _poke_latencies(sent: dict[int, float], arrivals: list[tuple[int, float]]) -> tuple[list[float], int]:
    """Per write: ms from sending it to the first poke at or after its version; also the unpoked count."""
    latencies, missing, i = [], 0, 0
    arrivals = sorted(arrivals)
    for version in sorted(sent):
        while i < len(arrivals) and arrivals[i][0] < version:
            i += 1
        if i == len(arrivals):
            missing += 1
            continue
        latencies.append((arrivals[i][1] - sent[version]) * 1e3)
    return latencies, missing


async def write_to_poke(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """Sequential puts from this process; time from sending each put to its poke on the notify topic."""
    tp = TopicPartition(ctx.settings.topics.notify, 0)
    consumer = committed_consumer(ctx.settings)
    await consumer.start()
    arrivals: list[tuple[int, float]] = []
    sent: dict[int, float] = {}
    values = make_values(16, seed=9)
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        reader = asyncio.create_task(_collect_pokes(consumer, arrivals))
        async with ConfigClient(ctx.settings, timeout=30) as client:
            deadline = time.perf_counter() + cfg.duration_s
            i = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                version = await client.put(WORKSPACE, TYPE, make_key(9999, i), values[i % len(values)])
                sent[version] = started
                i += 1
        last = max(sent, default=0)
        settle = time.perf_counter() + 3
        while (not arrivals or arrivals[-1][0] < last) and time.perf_counter() < settle:
            await asyncio.sleep(0.05)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    finally:
        await consumer.stop()
    latencies, missing = _poke_latencies(sent, arrivals)
    lat = summarize_ms(latencies)
    note = (f"{len(sent)} sequential puts, {len(arrivals)} pokes; p50 {lat.get('p50', float('nan')):.1f} ms; "
            "from sending the put to receiving its poke (client and poke reader share this process)")
    if missing:
        note += f"; {missing} writes never poked"
    return [Row("poke", "write-to-poke p99", lat.get("p99"), "ms", Goal("<=", 50), note=note,
                valid=missing == 0, extra={"latency_ms": lat})]


FLEET_TYPE = "fleet"


async def _grow_response_topic(settings: Settings, partitions: int) -> int:
    """Give the response topic at least ``partitions`` partitions (clients started later use them)."""
    topic = settings.topics.response
    async with admin_client(settings) as admin:
        [described] = await admin.describe_topics([topic])
        have = len(described["partitions"])
        if have < partitions:
            await admin.create_partitions({topic: NewPartitions(partitions)})
    return max(have, partitions)


async def _requests_sent(settings: Settings) -> int:
    """Records on the request topic so far: every request any client sent the writer."""
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topics.request) or {0}
        ends = await consumer.end_offsets([TopicPartition(settings.topics.request, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


@dataclass
class _FleetWriter:
    """The fleet's writes on eventconfig: puts of one key by one client; requests counted on the topic."""

    client: ConfigClient
    settings: Settings

    async def write(self, i: int) -> int:
        return await self.client.put(WORKSPACE, FLEET_TYPE, FLEET_KEY, f"value {i}")

    async def requests(self) -> int:
        return await _requests_sent(self.settings)

    def responses_read(self) -> int:
        return self.client.responses_read


def fleet_plan(cfg: BenchConfig) -> FleetPlan:
    return FleetPlan(cfg.subscribers, cfg.fleet_per_process, idle_s=cfg.fleet_idle_s, writes=cfg.fleet_writes,
                     interval_s=cfg.fleet_interval_s)


async def fleet(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """N ConfigSubscribers (each a separate service: own client, own connections) over worker processes,
    started at once, follow the type this process writes; with ``cfg.peer == "etcd"`` as many etcd
    watchers after them, with the same windows and writes (bench/fleet_run.py)."""
    partitions = await _grow_response_topic(ctx.settings, cfg.fleet_partitions or 2 * cfg.subscribers)
    servers = {"service": ctx.service.pid, **({"broker": ctx.broker_pid} if ctx.broker_pid else {})}
    async with ConfigClient(ctx.settings, timeout=30, share_connections=False) as writer, \
            ConfigClient(ctx.settings, timeout=30, share_connections=False) as prober:
        await writer.put(WORKSPACE, FLEET_TYPE, FLEET_KEY, "initial")  # every subscriber's first maps
        side = FleetSide(settings_env(ctx.settings), servers, _FleetWriter(writer, ctx.settings),
                         probe=partial(prober.get, WORKSPACE, FLEET_TYPE, FLEET_KEY),
                         profile=ctx.load("fleet").profile)
        measured = await run_fleet(side, fleet_plan(cfg), FleetSpec(0, FLEET_TYPE))
    etcd, etcd_error = None, ""
    if cfg.peer == "etcd":
        try:
            etcd = await etcd_fleet(ctx.workdir, fleet_plan(cfg), f"{WORKSPACE}/{FLEET_TYPE}/{FLEET_KEY}")
        except Exception as exc:  # noqa: BLE001 - the subscribers' rows stand without the peer's
            etcd_error = f"the etcd watchers failed: {type(exc).__name__}: {exc}"
    return fleet_rows(measured, etcd, partitions, etcd_error)


# --- log scenarios --------------------------------------------------------------------------------


async def replay_rate(workdir: Path, bootstrap: str, cfg: BenchConfig) -> list[Row]:
    """Time a fresh Materializer over a log of ``replay_items`` items (writes of 100 + marker)."""
    settings = deployment(bootstrap, workdir, "replay")
    await create_deployment_topics(settings)
    try:
        started = time.perf_counter()
        records = await replay.write_log(settings, cfg.replay_items)
        write_s = time.perf_counter() - started
        run, _ = await replay.materialize(settings, workdir / "replay-view")
    finally:
        await delete_deployment_topics(settings)
        replay.remove(workdir / "replay-view")
    ok = run.records == records
    note = (f"{run.records:,} records ({cfg.replay_items:,} items of 16+256 B, writes of 100 + marker) in "
            f"{run.seconds:.2f} s; log written at {records / write_s:,.0f} rec/s")
    if not ok:
        note += f"; EXPECTED {records:,} records"
    return [Row("replay", "materializer replay (fresh view)", run.records / run.seconds, "rec/s",
                Goal(">=", 50_000), note=note, valid=ok, extra=asdict(run))]


async def restart_view(workdir: Path, bootstrap: str, cfg: BenchConfig) -> list[Row]:
    """Build a ``restart_keys``-key view by replaying its log once, time a second start on it, then
    read it through a LocalView (a third start, on the same folder)."""
    settings = deployment(bootstrap, workdir, "restart")
    path = workdir / "restart-view"
    await create_deployment_topics(settings)
    try:
        started = time.perf_counter()
        records = await replay.write_log(settings, cfg.restart_keys)
        write_s = time.perf_counter() - started
        first, _ = await replay.materialize(settings, path)
        second, _ = await replay.materialize(settings, path)
        size = replay.dir_bytes(path)
        reads = await replay.local_view_get_rate(settings, path, cfg.restart_keys, cfg.view_gets)
    finally:
        await delete_deployment_topics(settings)
        replay.remove(path)
    label = f"{cfg.restart_keys:,}-key"
    replayed = second.records > 0 or second.rebuild_reason is not None
    restart_note = (f"consumed {second.records} records, rebuilt: {second.rebuild_reason or 'no'}; "
                    f"view {size / 2**20:,.0f} MiB on disk")
    if cfg.restart_keys < 1_000_000:
        restart_note += " (smaller than the goal's 1,000,000 keys)"
    return [
        Row("restart", f"replay while building the {label} view", first.records / first.seconds, "rec/s",
            Goal(">=", 50_000), note=f"{first.records:,} records in {first.seconds:.1f} s; log written in "
                                     f"{write_s:.1f} s ({records / write_s:,.0f} rec/s)",
            valid=first.records == records, extra=asdict(first)),
        Row("restart", f"restart of a {label} view until caught up", second.seconds, "s", Goal("<=", 3),
            note=restart_note, valid=not replayed, extra=asdict(second)),
        Row("restart", "LocalView.get, one thread, random keys of a cold view", reads.cold_per_s, "get/s",
            Goal(">=", 150_000),
            note=f"{cfg.view_gets:,} random gets of existing keys right after a new LocalView opened the {label} "
                 f"view: cold are its item cache and RocksDB block cache (both empty); warm is the OS page cache "
                 f"(the view's files were written moments before and are read through mmap); a second pass over "
                 f"other keys {reads.warm_per_s:,.0f}/s; {reads.misses} misses; LocalView start took "
                 f"{reads.start_s:.2f} s; {reads.cold_cpu_per_s:,.0f} per CPU second",
            valid=reads.misses == 0, extra=asdict(reads)),
        Row("restart", "LocalView.get, one thread, hot keys", reads.hot_per_s, "get/s", Goal(">=", 1_000_000),
            note=f"gets cycling over {replay.HOT_KEYS:,} keys read twice before (the item cache, "
                 f"local_view_cache_items); {reads.hot_cpu_per_s:,.0f} per CPU second", valid=reads.misses == 0),
    ]


async def history_replay(workdir: Path, bootstrap: str, cfg: BenchConfig) -> list[Row]:
    """Time ``state --at-version N`` (HistoryReader.state) over a history of N mutations."""
    from eventconfig.audit import HistoryReader

    settings = deployment(bootstrap, workdir, "history")
    await create_deployment_topics(settings)
    try:
        await replay.write_history(settings, cfg.history_mutations)
        async with HistoryReader(settings) as reader:
            started = time.perf_counter()
            state = await reader.state(at_version=cfg.history_mutations)
            seconds = time.perf_counter() - started
    finally:
        await delete_deployment_topics(settings)
    keys = len(state.items)
    return [Row("history", "history replay for state --at-version", cfg.history_mutations / seconds,
                "mutations/s", note=f"{cfg.history_mutations:,} mutations (2 changes each) in {seconds:.2f} s; "
                                          f"{keys:,} live keys at the end",
                valid=state.version == cfg.history_mutations)]


ServiceScenario = Callable[[ServiceContext, BenchConfig], Awaitable[list[Row]]]
LogScenario = Callable[[Path, str, BenchConfig], Awaitable[list[Row]]]

SERVICE_SCENARIOS: dict[str, ServiceScenario] = {"floor": floor, "put1": put_sequential, "put64": put_concurrent,
                                                 "get1": get_sequential, "get64": get_concurrent,
                                                 "reads": reads_per_process, "poke": write_to_poke, "fleet": fleet}


async def sse(ctx: ServiceContext, cfg: BenchConfig) -> list[Row]:
    """Many /v1/watch streams on one gateway process, poked by writes (bench/sse.py)."""
    return await sse_streams(ctx.settings, ctx.workdir, cfg.sse_streams, cfg.client_procs, cfg.sse_writes)


SERVICE_SCENARIOS["sse"] = sse


async def auth_cost(workdir: Path, bootstrap: str, cfg: BenchConfig) -> list[Row]:
    """Signing, verification and the writer's batch step with and without trusted audit (no broker)."""
    return auth_rows(cfg.auth_requests)


async def schema_cost(workdir: Path, bootstrap: str, cfg: BenchConfig) -> list[Row]:
    """The writer's batch step per put with and without a JSON Schema on the type (no broker)."""
    return validation_rows(cfg.auth_requests)


LOG_SCENARIOS: dict[str, LogScenario] = {"replay": replay_rate, "restart": restart_view, "history": history_replay,
                                         "auth": auth_cost, "schema": schema_cost}
ALL_SCENARIOS = [*SERVICE_SCENARIOS, *LOG_SCENARIOS]


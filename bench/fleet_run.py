"""The fleet scenario's run: N members over worker processes (:mod:`bench.fleet`), started at once,
measured idle and during writes; eventconfig subscribers against the service, and with ``--peer
etcd`` as many etcd watchers against a one-member etcd.

One run of either kind (:func:`run_fleet`): a baseline window with no fleet, before it starts and
again after it stopped (the servers' own idle CPU: the lower of the two); the workers spawned all at once, as a deploy (time until every member has its first state;
for eventconfig a probe client's gets meanwhile, against the same probe before the start); an idle
window (CPU of the servers and of the members' processes, their resident memory); writes an interval
apart (write -> every member, CPU); then each worker's report.

Example::

    measured = await run_fleet(FleetSide(env, servers, writer, probe), FleetPlan(200), FleetSpec(0, "fleet"))
    measured.outcome.latencies_ms, measured.idle["broker_pct"]
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bench import cpu
from bench.etcd_server import EtcdServer
from bench.profiling import ProcessProfile, WindowProfile
from bench.fleet import FleetOutcome, FleetReport, FleetSpec, StartOutcome, fleet_outcome, start_outcome


class FleetWriter(Protocol):
    """What makes the fleet's writes, and what it can say about the server's work."""

    async def write(self, i: int) -> int:
        """Write once; the version (etcd: revision) the members will see."""

    async def requests(self) -> int:
        """Requests the server got so far (0 when not known)."""

    def responses_read(self) -> int:
        """Response records this writer's own client read so far (0 when not known)."""


@dataclass
class FleetSide:
    """One kind of fleet: the workers' environment, the servers measured, how it writes and probes."""

    env: dict[str, str]
    servers: dict[str, int]  # name -> pid, e.g. {"broker": pid, "service": pid} or {"etcd": pid}
    writer: FleetWriter
    probe: Callable[[], Awaitable[object]] | None = None  # one request of another client, timed during the start
    profile: WindowProfile | None = None  # --profile: py-spy on the servers and one worker during the writes


@dataclass
class FleetMeasure:
    """What one fleet run measured (CPU: percent of one core; ``members_pct`` all worker processes)."""

    members: int
    processes: int
    baseline: dict[str, float]
    start: StartOutcome
    start_cpu: dict[str, float]
    idle: dict[str, float]
    busy: dict[str, float]
    rss_mib: float  # the worker processes together, idle
    rss_base_mib: float  # the same processes before their members started
    outcome: FleetOutcome
    writes: int
    requests_per_write: float
    load_before: tuple[float, float, float]
    probe_before_ms: list[float] = field(default_factory=list)
    probe_during_ms: list[float] = field(default_factory=list)
    probe_errors: int = 0
    profiles: list[ProcessProfile] = field(default_factory=list)

    @property
    def rss_per_member_mib(self) -> float:
        return self.rss_mib / self.members

    @property
    def marginal_rss_per_member_kib(self) -> float:
        return (self.rss_mib - self.rss_base_mib) * 1024 / self.members


def worker_shares(members: int, per_process: int) -> list[int]:
    """Members per worker process: as few processes as hold ``per_process`` each, evenly filled."""
    procs = max(1, math.ceil(members / max(per_process, 1)))
    return [members // procs + (1 if i < members % procs else 0) for i in range(procs)]


def split_cpu(used: dict[str, float]) -> dict[str, float]:
    """A :func:`bench.cpu.usage` result with the workers (``worker<i>_pct``) summed into ``members_pct``
    and ``other_pct``: the rest of the machine."""
    result = {k: v for k, v in used.items() if not k.startswith("worker")}
    result["members_pct"] = sum(v for k, v in used.items() if k.startswith("worker"))
    result["other_pct"] = result["machine_busy_pct"] - sum(v for k, v in result.items() if k != "machine_busy_pct")
    return result


def quietest(*windows: dict[str, float]) -> dict[str, float]:
    """Per process, the lowest CPU of several windows: a server's own idle, whichever window caught
    the least of its background work (a warm-up's after-effects, or a fleet's going away)."""
    return {key: min(w.get(key, math.inf) for w in windows) for key in windows[0]}


async def _window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before = cpu.sample(pids)
    await asyncio.sleep(seconds)
    return split_cpu(cpu.usage(before, cpu.sample(pids)))


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:")), 0.0)
    except OSError:
        return 0.0


async def _timed(probe: Callable[[], Awaitable[object]], stop: asyncio.Event,
                 latencies: list[float], errors: list[str]) -> None:
    """Run ``probe`` back to back until ``stop``; its round trips in ms (failures counted)."""
    while not stop.is_set():
        began = time.perf_counter()
        try:
            await asyncio.wait_for(probe(), 30)
            latencies.append((time.perf_counter() - began) * 1e3)
        except Exception as exc:  # noqa: BLE001 - a failed probe is a finding, counted
            errors.append(f"{type(exc).__name__}: {exc}")


async def _probe_for(probe: Callable[[], Awaitable[object]], seconds: float) -> list[float]:
    latencies: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_timed(probe, stop, latencies, []))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return latencies


async def _spawn(side: FleetSide, specs: list[FleetSpec]) -> list[asyncio.subprocess.Process]:
    return [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.fleet", json.dumps(asdict(spec)), env=side.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE) for spec in specs]


async def _ready(workers: list[asyncio.subprocess.Process], members: int, timeout: float) -> None:
    """Wait for every worker's ``READY``; on timeout say how many members had their first state."""
    started = [0] * len(workers)

    async def one(i: int, worker: asyncio.subprocess.Process) -> None:
        while (line := await worker.stdout.readline()).startswith(b"STARTED "):  # type: ignore[union-attr]
            started[i] = int(line.split()[1])
        if line.strip() != b"READY":
            raise RuntimeError(f"a fleet worker failed to start (exit {worker.returncode}): {line!r}")

    try:
        await asyncio.wait_for(asyncio.gather(*(one(i, w) for i, w in enumerate(workers))), timeout)
    except TimeoutError:
        raise RuntimeError(f"after {timeout:.0f} s only {sum(started)} of {members} members had their first state "
                           "(as each worker process last reported)") from None


async def _tell(workers: list[asyncio.subprocess.Process], line: str) -> None:
    for worker in workers:
        worker.stdin.write(f"{line}\n".encode())  # type: ignore[union-attr]
        await worker.stdin.drain()  # type: ignore[union-attr]


async def _report(worker: asyncio.subprocess.Process, timeout: float) -> FleetReport:
    out, _ = await asyncio.wait_for(worker.communicate(), timeout)
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"a fleet worker exited {worker.returncode} without a result")
    return FleetReport(**json.loads(lines[-1][len("RESULT "):]))


async def _reap(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


@dataclass(frozen=True)
class FleetPlan:
    """Sizes and windows of a fleet run."""

    members: int
    per_process: int = 125
    baseline_s: float = 5.0
    idle_s: float = 10.0
    writes: int = 20
    interval_s: float = 1.0
    start_timeout_s: float = 900.0
    settle_s: float = 10.0


async def run_fleet(side: FleetSide, plan: FleetPlan, spec: FleetSpec) -> FleetMeasure:
    """Run one fleet of ``plan.members`` members like ``spec`` (its count is set per worker)."""
    load_before = os.getloadavg()
    baseline = await _window(side.servers, plan.baseline_s)
    probe_before = await _probe_for(side.probe, plan.baseline_s) if side.probe else []
    specs = [replace(spec, members=n, settle_s=plan.settle_s, start_timeout_s=plan.start_timeout_s)
             for n in worker_shares(plan.members, plan.per_process)]
    during: list[float] = []
    errors: list[str] = []
    stop = asyncio.Event()
    probing = asyncio.create_task(_timed(side.probe, stop, during, errors)) if side.probe else None
    spawned_at, before = time.time(), cpu.sample(side.servers)
    workers = await _spawn(side, specs)
    profiling: asyncio.Task[list[ProcessProfile]] | None = None
    try:
        try:
            await _ready(workers, plan.members, plan.start_timeout_s)
        finally:
            stop.set()
            if probing is not None:
                await probing
        pids = {**side.servers, **{f"worker{i}": w.pid for i, w in enumerate(workers)}}
        start_cpu = split_cpu(cpu.usage(before, cpu.sample(side.servers)))
        await _tell(workers, "GO")
        idle = await _window(pids, plan.idle_s)
        rss = sum(_rss_mib(w.pid) for w in workers)
        reads_before, requests_before = side.writer.responses_read(), await side.writer.requests()
        sent: dict[int, float] = {}
        before = cpu.sample(pids)
        if side.profile is not None:
            since = time.time()
            profiling = side.profile.start(workers[0].pid, since, since + plan.writes * plan.interval_s)
        for i in range(plan.writes):
            began = time.time()
            sent[await side.writer.write(i)] = began
            await asyncio.sleep(max(0.0, began + plan.interval_s - time.time()))
        busy = split_cpu(cpu.usage(before, cpu.sample(pids)))
        writer_reads = side.writer.responses_read() - reads_before
        await _tell(workers, f"END {max(sent)}")
        reports = [await _report(w, plan.settle_s + 60) for w in workers]
        requests = await side.writer.requests() - requests_before  # every member saw the last write: no fetch left
        profiles = await profiling if profiling is not None else []
    finally:
        if profiling is not None and not profiling.done():
            profiling.cancel()
            await asyncio.gather(profiling, return_exceptions=True)
        await _reap(workers)
    baseline = quietest(baseline, await _window(side.servers, plan.baseline_s))
    return FleetMeasure(plan.members, len(workers), baseline, start_outcome(spawned_at, reports), start_cpu, idle,
                        busy, rss, sum(r.rss_base_mib for r in reports), fleet_outcome(sent, reports, writer_reads),
                        len(sent), requests / max(len(sent), 1), load_before, probe_before, during, len(errors),
                        profiles)


def busy_label(load1: float, cores: int, other_pct: float) -> str:
    """'busy machine (...)' when other work shared the cores (a 1-minute load average above half the
    cores, or other processes above 20 % of a core in the window), else ''."""
    if load1 <= cores / 2 and other_pct <= 20:
        return ""
    return f"busy machine (load average {load1:.1f} on {cores} cores, other processes {other_pct:.0f} % of a core)"


def machine_cores() -> int:
    return len(os.sched_getaffinity(0))


class EtcdWriter:
    """The fleet's writes on etcd: puts of one key through one ``aetcd`` client."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key.encode()

    async def write(self, i: int) -> int:
        return int((await self.client.put(self.key, f"value {i}".encode())).header.revision)

    async def requests(self) -> int:
        return 0  # not counted: the watchers send none

    def responses_read(self) -> int:
        return 0


async def etcd_fleet(workdir: Path, plan: FleetPlan, key: str) -> FleetMeasure:
    """As many etcd watchers as ``plan.members`` (a client each) on a fresh one-member etcd, the same
    windows and writes as the subscribers had. Raises PeerUnavailable without an ``etcd`` binary."""
    import aetcd  # the optional ``bench`` extra

    async with EtcdServer.start(workdir / "fleet-etcd") as etcd:
        host, _, port = etcd.endpoint.rpartition(":")
        async with aetcd.Client(host=host, port=int(port)) as client:
            await client.put(key.encode(), b"initial")
            side = FleetSide(dict(os.environ), {"etcd": etcd.pid}, EtcdWriter(client, key))
            return await run_fleet(side, plan, FleetSpec(0, "", target="etcd", etcd=etcd.endpoint, key=key))

"""CPU use during a measurement window, from /proc (Linux): the whole machine and chosen processes.

Example::

    before = sample({"service": pid}); await asyncio.sleep(5); after = sample({"service": pid})
    usage(before, after)    # {"machine_busy_pct": 180.0, "service_pct": 97.0}  (100 = one core)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class CpuSample:
    wall: float
    machine_busy: float = 0.0  # seconds of busy CPU time summed over all cores
    processes: dict[str, float] = field(default_factory=dict)  # name -> CPU seconds (user + system)


def _machine_busy() -> float:
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICKS


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its reaped children; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / _TICKS  # utime, stime


def run_queue_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` were ready to run but waited for a core (schedstat); 0 if unknown."""
    waited = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                waited += int(f.read().split()[1])  # on-cpu ns, run-queue wait ns, timeslices
        except (OSError, IndexError, ValueError):
            continue
    return waited / 1e9


def sample(pids: Mapping[str, int]) -> CpuSample:
    return CpuSample(time.monotonic(), _machine_busy(), {name: process_cpu(pid) for name, pid in pids.items()})


def usage(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Percent of one core used between two samples (machine: summed over all cores)."""
    wall = max(after.wall - before.wall, 1e-9)
    result = {"machine_busy_pct": 100 * (after.machine_busy - before.machine_busy) / wall}
    for name, seconds in after.processes.items():
        result[f"{name}_pct"] = 100 * (seconds - before.processes.get(name, 0.0)) / wall
    return result


def cpu_per_request(cpu: Mapping[str, float], names: Sequence[str], requests: float, seconds: float) -> float | None:
    """Milliseconds of one core per request that the named processes spent together, from a
    :func:`usage` result (``<name>_pct``) over ``seconds``; None when one is missing or nothing ran."""
    if not requests or any(f"{name}_pct" not in cpu for name in names):
        return None
    return sum(cpu[f"{name}_pct"] for name in names) * 10 * seconds / requests


def listener_pid(port: int) -> int:
    """The pid of the local process listening on TCP ``port`` (the broker), or 0 when not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
            except OSError:
                continue
    return 0

"""The benchmark's peer: a one-member etcd on free loopback ports, measured in the same run.

``--peer etcd`` starts the ``etcd`` binary found on PATH (Debian package ``etcd-server``) with its
data in the run's temp folder, fsync on (etcd's default), and the same put/get loops as eventconfig
run against it through ``aetcd`` (the ``bench`` extra). Its figures go in the table's peer column,
with the ratio eventconfig / etcd.

Example::

    async with EtcdServer.start(workdir) as etcd:
        await preload_etcd(etcd.endpoint, loops=64, key_space=100)
"""

from __future__ import annotations

import asyncio
import os

from bench.etcd_server import EtcdServer
from bench.load import LoadSpec, make_key, make_values, open_targets
from bench.scenarios import BenchConfig, Load, LoadRun, run_workers


async def preload_etcd(endpoint: str, loops: int, key_space: int) -> None:
    """The keys the get loops read, as :func:`bench.load.preload` writes them into eventconfig."""
    values = make_values(64, seed=3)
    spec = LoadSpec(op="put", loops=1, warmup=0, duration=0, start_at=0, target="etcd", etcd=endpoint, clients=8)
    async with open_targets(spec) as targets:
        keys = [(make_key(loop, i), values[(loop + i) % len(values)]) for loop in range(loops)
                for i in range(key_space)]
        for start in range(0, len(keys), len(targets)):
            await asyncio.gather(*(t.put(k, v) for t, (k, v) in zip(targets, keys[start:start + len(targets)])))


# The load scenarios the peer runs too: scenario -> (op, concurrent?).
PEER_LOADS = {"put1": ("put", False), "put64": ("put", True), "get1": ("get", False), "get64": ("get", True)}


async def measure_etcd(etcd: EtcdServer, names: list[str], cfg: BenchConfig) -> dict[str, LoadRun]:
    """Run the selected load scenarios against etcd exactly as against eventconfig."""
    load = Load(dict(os.environ), {"etcd": etcd.pid}, target="etcd", etcd=etcd.endpoint)
    runs: dict[str, LoadRun] = {}
    wanted = [n for n in names if n in PEER_LOADS]
    if any(PEER_LOADS[n][0] == "get" for n in wanted):
        await preload_etcd(etcd.endpoint, cfg.clients, cfg.get_key_space)
    for seed, name in enumerate(wanted, start=1):
        op, concurrent = PEER_LOADS[name]
        loops, procs = (cfg.clients, cfg.client_procs) if concurrent else (1, 1)
        runs[name] = await run_workers(load, op, loops, procs, cfg, seed=seed)
    return runs

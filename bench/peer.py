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
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.load import LoadSpec, make_key, make_values, open_targets
from bench.scenarios import BenchConfig, Load, LoadRun, run_workers


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (no binary, or it did not start)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EtcdServer:
    """A running single-member etcd; ``endpoint`` is ``127.0.0.1:PORT``."""

    endpoint: str
    process: subprocess.Popen[bytes]
    version: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, workdir: Path, timeout: float = 30.0) -> AsyncIterator[EtcdServer]:
        binary = shutil.which("etcd")
        if binary is None:
            raise PeerUnavailable("no `etcd` on PATH (Debian: apt-get install etcd-server)")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        client, peer = _free_port(), _free_port()
        data = workdir / "etcd"
        data.mkdir(parents=True, exist_ok=True)
        args = [binary, "--name", "bench", "--data-dir", str(data),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "error"]
        with open(workdir / "etcd.log", "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = cls(f"127.0.0.1:{client}", process, version)
        try:
            await _wait_answering(server, timeout)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_answering(server: EtcdServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    spec = LoadSpec(op="put", loops=1, warmup=0, duration=0, start_at=0, target="etcd", etcd=server.endpoint)
    while True:
        if server.process.poll() is not None:
            raise PeerUnavailable(f"etcd exited with code {server.process.returncode} (see etcd.log)")
        try:
            async with open_targets(spec) as (target, *_):
                await target.put("ready", "1")
                return
        except Exception as exc:  # noqa: BLE001 - not up yet; the deadline below decides
            if time.monotonic() > deadline:
                raise PeerUnavailable(f"etcd did not answer within {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(0.2)


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

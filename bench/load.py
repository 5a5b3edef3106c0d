"""Request loops against a store: N concurrent in-flight loops over C clients, time-boxed.

A loop sends one request, waits for its response, sends the next. Requests completing inside the
measurement window ``[start + warmup, start + warmup + duration]`` (wall clock, so loops in several
processes share one window) are counted; their round trips are the latency samples. The store is
eventconfig (a :class:`ConfigClient` per client) or, for the same-run peer figures, etcd (an
``aetcd`` client per client); the loops and keys are the same for both.

Example::

    async with open_targets(spec, settings) as targets:
        stats = await run_loops(spec, targets)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from eventconfig.client import ConfigClient
from eventconfig.settings import Settings

KEY_BYTES = 16
VALUE_BYTES = 256
WORKSPACE = "bench"
TYPE = "kv"
_ALPHABET = string.ascii_letters + string.digits


def make_key(loop: int, i: int) -> str:
    """A 16-byte key, unique per (loop, i) for loop < 10,000 and i < 10^11."""
    key = f"{loop:04d}{i:012d}"
    assert len(key) == KEY_BYTES
    return key


def make_values(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct pseudo-random 256-byte ASCII values (little compressible, like real data)."""
    rng = random.Random(seed)
    return ["".join(rng.choices(_ALPHABET, k=VALUE_BYTES)) for _ in range(count)]


@dataclass
class LoadSpec:
    """One load run: ``op`` is ``put`` or ``get``; ``key_space`` keys per loop exist for gets.

    ``clients`` is how many separate clients this process opens (loops are dealt round-robin over
    them); ``target`` is ``eventconfig`` or ``etcd`` (then ``etcd`` is its ``host:port``)."""

    op: str
    loops: int
    warmup: float
    duration: float
    start_at: float
    loop_offset: int = 0  # global index of this process's first loop (unique keys across processes)
    key_space: int = 100
    seed: int = 1
    clients: int = 1
    target: str = "eventconfig"
    etcd: str = ""


class Target(Protocol):
    """One client of the store under load."""

    async def put(self, key: str, value: str) -> None: ...

    async def get(self, key: str) -> None: ...


class ConfigTarget:
    def __init__(self, client: ConfigClient) -> None:
        self.client = client

    async def put(self, key: str, value: str) -> None:
        await self.client.put(WORKSPACE, TYPE, key, value)

    async def get(self, key: str) -> None:
        await self.client.get(WORKSPACE, TYPE, key)


class EtcdTarget:
    """etcd through ``aetcd`` (gRPC): a put and a linearizable get, the same keys and values."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def put(self, key: str, value: str) -> None:
        await self.client.put(f"{WORKSPACE}/{TYPE}/{key}".encode(), value.encode())

    async def get(self, key: str) -> None:
        await self.client.get(f"{WORKSPACE}/{TYPE}/{key}".encode())


@contextlib.asynccontextmanager
async def open_targets(spec: LoadSpec, settings: Settings | None = None) -> AsyncIterator[list[Target]]:
    """Open ``spec.clients`` clients of ``spec.target`` (closed on exit); eventconfig needs ``settings``."""
    async with contextlib.AsyncExitStack() as stack:
        targets: list[Target] = []
        for _ in range(max(1, spec.clients)):
            if spec.target == "etcd":
                import aetcd  # the optional ``bench`` extra

                host, _, port = spec.etcd.rpartition(":")
                client = await stack.enter_async_context(aetcd.Client(host=host, port=int(port)))
                targets.append(EtcdTarget(client))
            else:
                if settings is None:
                    raise ValueError("an eventconfig load needs settings")
                config_client = await stack.enter_async_context(ConfigClient(settings, timeout=30.0))
                targets.append(ConfigTarget(config_client))
        yield targets


@dataclass
class LoadStats:
    completed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""

    def merge(self, other: LoadStats) -> None:
        self.completed += other.completed
        self.errors += other.errors
        self.latencies_ms.extend(other.latencies_ms)
        self.first_error = self.first_error or other.first_error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def preload(client: ConfigClient, loops: int, key_space: int, values: list[str]) -> int:
    """Put ``key_space`` keys for each of ``loops`` loop ids (in requests of 100 items); returns the version."""
    version = 0
    items = [(TYPE, make_key(loop, i), values[(loop + i) % len(values)]) for loop in range(loops)
             for i in range(key_space)]
    for start in range(0, len(items), 100):
        version = await client.put_many(WORKSPACE, items[start:start + 100])
    return version


async def _loop(client: Target, spec: LoadSpec, index: int, values: list[str], stats: LoadStats) -> None:
    rng = random.Random(spec.seed * 1_000_003 + index)
    loop_id = spec.loop_offset + index
    measure_from = spec.start_at + spec.warmup
    measure_to = measure_from + spec.duration
    i = 0
    while True:
        now = time.time()
        if now >= measure_to:
            return
        started = time.perf_counter()
        try:
            if spec.op == "put":
                await client.put(make_key(loop_id, i), values[i % len(values)])
            else:
                await client.get(make_key(loop_id, rng.randrange(spec.key_space)))
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            stats.errors += 1
            stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.01)
            continue
        elapsed_ms = (time.perf_counter() - started) * 1e3
        if measure_from <= now and time.time() <= measure_to:
            stats.completed += 1
            stats.latencies_ms.append(elapsed_ms)
        i += 1


async def run_loops(spec: LoadSpec, targets: Sequence[Target]) -> LoadStats:
    """Run ``spec.loops`` concurrent loops, loop ``i`` on ``targets[i % len(targets)]``."""
    values = make_values(64, seed=spec.seed)
    delay = spec.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    stats = [LoadStats() for _ in range(spec.loops)]
    await asyncio.gather(*(_loop(targets[i % len(targets)], spec, i, values, s) for i, s in enumerate(stats)))
    total = LoadStats()
    for s in stats:
        total.merge(s)
    return total

"""Log-side scenarios: materializer replay rate, restart of a large view, local view reads.

The log is written straight to a fresh log topic by a transactional producer, in the writer's own
record format (:mod:`eventconfig.logrecords`): writes of 100 items plus a commit marker, versions 1,
2, 3 ... Nothing else touches those topics, so the materializer's work is exactly that log.

Example::

    records = await write_log(settings, items=200_000)
    rate = await time_replay(settings, path)
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from eventconfig.client.local_view import LocalView
from eventconfig.codec import default_codec
from eventconfig.logrecords import OutRecord, marker_record, put_record
from eventconfig.model import ItemKey
from eventconfig.settings import Settings
from eventconfig.view.materializer import Materializer

from bench.load import TYPE, WORKSPACE, make_values

ITEMS_PER_WRITE = 100
WRITES_PER_TRANSACTION = 20


def item_key(n: int) -> ItemKey:
    """The n-th item of a generated log: 16-byte key."""
    return ItemKey(WORKSPACE, TYPE, f"{n:016d}")


def write_records(version: int, first_item: int, count: int, values: list[str]) -> list[OutRecord]:
    """One write at ``version``: ``count`` puts of items ``first_item...`` and its commit marker."""
    codec = default_codec()
    records = [put_record(item_key(n), values[n % len(values)], version, codec)
               for n in range(first_item, first_item + count)]
    records.append(marker_record(version, codec))
    return records


async def _send_all(producer: AIOKafkaProducer, topic: str, records: list[OutRecord]) -> list[asyncio.Future[object]]:
    """Append ``records`` to as few producer batches as fit, send them; returns the delivery futures."""
    futures: list[asyncio.Future[object]] = []
    builder = producer.create_batch()
    for record in records:
        while builder.append(key=record.key, value=record.value, timestamp=None, headers=record.headers) is None:
            futures.append(await producer.send_batch(builder, topic, partition=0))
            builder = producer.create_batch()
    if builder.record_count():
        futures.append(await producer.send_batch(builder, topic, partition=0))
    return futures


async def write_history(settings: Settings, mutations: int) -> None:
    """Write ``mutations`` history records (versions 1..N, 2 changes each, 64-byte values) as the
    writer would, 500 per transaction, straight to the history topic."""
    codec = default_codec()
    values = make_values(64, seed=13)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers,
                                transactional_id=f"{settings.deployment_name}.benchhistory.tx",
                                max_batch_size=1024 * 1024, linger_ms=0, max_request_size=settings.max_message_bytes)
    await producer.start()
    try:
        for first in range(1, mutations + 1, 500):
            batch = [OutRecord(str(v).encode(), codec.encode("Mutation", {
                "version": v, "timestamp_ms": 1_700_000_000_000 + v, "request_id": f"r{v}", "actor": None,
                "workspace": WORKSPACE, "operation": "put", "changes": [
                    {"type": TYPE, "key": f"k{(v * 2 + c) % 10_000}", "value": values[(v + c) % len(values)],
                     "previous": None} for c in range(2)]}), [])
                for v in range(first, min(first + 500, mutations + 1))]
            async with producer.transaction():
                await asyncio.gather(*await _send_all(producer, settings.topics.history, batch))
    finally:
        await producer.stop()


async def write_log(settings: Settings, items: int) -> int:
    """Write ``items`` items (writes of 100 + marker, 20 writes per transaction); returns records written."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers,
                                transactional_id=f"{settings.deployment_name}.benchload.tx",
                                max_batch_size=1024 * 1024, linger_ms=0, max_request_size=settings.max_message_bytes)
    await producer.start()
    values = make_values(256, seed=11)
    written, version, item = 0, 0, 0
    try:
        while item < items:
            async with producer.transaction():
                batch: list[OutRecord] = []
                for _ in range(WRITES_PER_TRANSACTION):
                    if item >= items:
                        break
                    count = min(ITEMS_PER_WRITE, items - item)
                    version += 1
                    batch.extend(write_records(version, item, count, values))
                    item += count
                futures = await _send_all(producer, settings.topics.log, batch)
                await asyncio.gather(*futures)
                written += len(batch)
    finally:
        await producer.stop()
    return written


@dataclass
class MaterializeRun:
    seconds: float
    records: int
    version: int
    rebuild_reason: str | None


async def materialize(settings: Settings, path: Path, timeout: float = 900.0,
                      keep_open: bool = False) -> tuple[MaterializeRun, Materializer]:
    """Start a Materializer on ``path`` and time it from start() until wait_caught_up() returns."""
    materializer = Materializer(settings, path)
    started = time.perf_counter()
    await materializer.start()
    version = await materializer.wait_caught_up(timeout)
    seconds = time.perf_counter() - started
    run = MaterializeRun(seconds, materializer.records_applied, version, materializer.rebuild_reason)
    if not keep_open:
        await materializer.stop()
    return run, materializer


async def _timed_gets(view: LocalView, probes: list[ItemKey], chunk: int = 10_000) -> tuple[float, float, int]:
    """Gets per second of wall clock and per second of this thread's CPU time (the machine may be
    shared: the CPU figure is what one free core would do), and the misses. The event loop gets a turn
    between chunks (untimed), so the view's consumer is not starved past its request timeout."""
    get, misses, wall, cpu = view.get, 0, 0.0, 0.0
    for first in range(0, len(probes), chunk):
        started, cpu_started = time.perf_counter(), time.thread_time()
        for workspace, type_, key in probes[first:first + chunk]:
            if get(workspace, type_, key) is None:
                misses += 1
        wall += time.perf_counter() - started
        cpu += time.thread_time() - cpu_started
        await asyncio.sleep(0)
    return len(probes) / wall, len(probes) / max(cpu, 1e-9), misses


HOT_KEYS = 1_000


@dataclass
class LocalViewReads:
    cold_per_s: float  # first pass right after the start: item cache and block cache empty
    warm_per_s: float  # second pass over other random keys (pages the first pass read stay mapped)
    hot_per_s: float  # repeated gets of HOT_KEYS keys, served by the item cache
    cold_cpu_per_s: float  # the same per second of the reading thread's CPU time
    hot_cpu_per_s: float
    misses: int
    start_s: float  # LocalView.start() on the existing view


async def local_view_get_rate(settings: Settings, path: Path, keys: int, gets: int, seed: int = 5) -> LocalViewReads:
    """Open a LocalView on an existing view and time two passes of random ``LocalView.get`` calls, then
    ``gets`` gets cycling over a hot set of :data:`HOT_KEYS` keys (read twice first, as a service would:
    an item enters the item cache on its second miss)."""
    rng = random.Random(seed)
    passes = [[item_key(rng.randrange(keys)) for _ in range(gets)] for _ in range(2)]
    hot = [item_key(rng.randrange(keys)) for _ in range(HOT_KEYS)]
    view = LocalView(settings, path)
    started = time.perf_counter()
    await view.start()
    start_s = time.perf_counter() - started
    try:
        cold, cold_cpu, cold_misses = await _timed_gets(view, passes[0])
        warm, _, warm_misses = await _timed_gets(view, passes[1])
        await _timed_gets(view, hot * 2)
        hot_rate, hot_cpu, hot_misses = await _timed_gets(view, hot * max(1, gets // HOT_KEYS))
    finally:
        await view.stop()
    return LocalViewReads(cold, warm, hot_rate, cold_cpu, hot_cpu, cold_misses + warm_misses + hot_misses, start_s)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

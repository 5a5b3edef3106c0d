"""The physical floor of the architecture, measured with bare aiokafka on the same broker in the same run.

A request through eventconfig is two produce → fetch hops (client → request topic → writer, writer →
response topic → client); a write adds a transaction commit. This scenario times exactly that with
no eventconfig code in the path: a ping produced to topic A, echoed by a second consumer/producer
pair to topic B, read back (one round trip = two hops), the cheapest transaction aiokafka can
make (begin, one record, commit), and the round trip of a write: the same two hops with the echo
committing its answer in a transaction, read back ``read_committed`` once the commit markers are
written. The producers and consumers use the same settings as
:class:`~eventconfig.client.ConfigClient` (acks=all, idempotent, ``read_committed``, 100 ms
long-poll), so the ratio rows compare like with like.

Example::

    rows = await floor_rows(settings, cfg)
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from eventconfig.kafka.reading import committed_consumer
from eventconfig.kafka.topics import admin_client, cluster_replication
from eventconfig.settings import Settings

from eventconfig.tasks import cancel

from bench import cpu
from bench.report import Row, percentile, summarize_ms

PING_BYTES = 300  # about a get request/response


def _producer(settings: Settings, transactional: bool = False) -> AIOKafkaProducer:
    """A producer as ConfigClient's; ``transactional``: with a fresh transactional id of its own."""
    txn = {"transactional_id": f"bench-floor-{uuid.uuid4().hex[:8]}"} if transactional else {}
    return AIOKafkaProducer(**settings.kafka_kwargs(), acks="all", enable_idempotence=True, linger_ms=0, **txn)


async def _positioned(settings: Settings, topic: str) -> AIOKafkaConsumer:
    consumer = committed_consumer(settings)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    return consumer


async def _echo(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, to: str, transactional: bool) -> None:
    """Answer each ping with a pong; ``transactional``: one transaction per pong."""
    while True:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            for record in records:
                if transactional:
                    await producer.begin_transaction()
                    await producer.send(to, record.value, key=record.key)
                    await producer.commit_transaction()
                else:
                    await producer.send(to, record.value, key=record.key)


async def _arrivals(consumer: AIOKafkaConsumer, waiting: dict[bytes, asyncio.Future[None]]) -> None:
    while True:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            for record in records:
                future = waiting.pop(record.key or b"", None)
                if future is not None and not future.done():
                    future.set_result(None)


async def two_hop_round_trips(settings: Settings, ping: str, pong: str, seconds: float,
                              transactional: bool = False) -> list[float]:
    """Sequential ping → echo → pong round trips for ``seconds``; milliseconds each. ``transactional``:
    the echo commits each pong in a transaction of its own, as the writer commits a write's answer."""
    client = _producer(settings)
    echo = _producer(settings, transactional=transactional)
    await client.start()
    await echo.start()
    inbound, outbound = await _positioned(settings, ping), await _positioned(settings, pong)
    waiting: dict[bytes, asyncio.Future[None]] = {}
    payload = b"x" * PING_BYTES
    samples: list[float] = []
    tasks = [asyncio.create_task(_echo(inbound, echo, pong, transactional)), asyncio.create_task(_arrivals(outbound, waiting))]
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            key = uuid.uuid4().bytes
            arrived = waiting[key] = asyncio.get_running_loop().create_future()
            started = time.perf_counter()
            await client.send(ping, payload, key=key)
            await asyncio.wait_for(arrived, 10)
            samples.append((time.perf_counter() - started) * 1e3)
    finally:
        await cancel(*tasks)
        for kafka_client in (client, echo, inbound, outbound):
            await kafka_client.stop()
    return samples


# Between two timed transactions. Back to back, the next transaction's AddPartitionsToTxn often
# reaches the coordinator while it still writes the previous commit's markers; the broker answers
# CONCURRENT_TRANSACTIONS and aiokafka retries ~20 ms later, so the figure turns bimodal (~3 or
# ~24 ms). A writer's transactions are spaced by its requests' round trips, so the pause is fair.
COMMIT_PAUSE_S = 0.005


async def commit_times(settings: Settings, topic: str, seconds: float) -> list[float]:
    """Transactions of one record each for ``seconds``, COMMIT_PAUSE_S apart; milliseconds each."""
    producer = _producer(settings, transactional=True)
    await producer.start()
    samples: list[float] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await producer.begin_transaction()
            await producer.send(topic, b"x" * PING_BYTES)
            await producer.commit_transaction()
            samples.append((time.perf_counter() - started) * 1e3)
            await asyncio.sleep(COMMIT_PAUSE_S)
    finally:
        await producer.stop()
    return samples


async def floor_rows(settings: Settings, seconds: float, broker_pid: int = 0) -> list[Row]:
    """The floor figures, on two fresh one-partition topics that are deleted afterwards; with the
    broker's pid, also the broker's CPU per transaction (the part of a put's cost no writer can cut)."""
    names = [f"{settings.topic_prefix}.floor-{side}" for side in ("ping", "pong")]
    async with admin_client(settings) as admin:
        replication = await cluster_replication(admin, settings)
        await admin.create_topics([NewTopic(name, 1, replication.factor) for name in names])
    try:
        ping, pong = names
        await two_hop_round_trips(settings, ping, pong, seconds=min(1.0, seconds))  # unmeasured: warm
        hops = await two_hop_round_trips(settings, ping, pong, seconds=seconds)
        broker = {"broker": broker_pid} if broker_pid else {}
        before = cpu.sample(broker)
        commits = await commit_times(settings, ping, seconds=seconds)
        broker_ms = cpu.cpu_per_request(cpu.usage(before, cpu.sample(broker)), ["broker"], len(commits), seconds)
        writes = await two_hop_round_trips(settings, ping, pong, seconds=seconds, transactional=True)
    finally:
        async with admin_client(settings) as admin:
            await admin.delete_topics(names)
    hop_ms, commit_ms, write_ms = summarize_ms(hops), summarize_ms(commits), summarize_ms(writes)
    return [
        Row("floor", "two-hop round trip p50 (bare aiokafka)", percentile(hops, 50), "ms",
            note=f"{len(hops):,} sequential ping → echo → pong, p99 {hop_ms.get('p99', float('nan')):.2f} ms; "
                 "warm connections", extra={"latency_ms": hop_ms}),
        Row("floor", "transaction commit p50 (1 record, bare aiokafka)", percentile(commits, 50), "ms",
            note=f"{len(commits):,} transactions {COMMIT_PAUSE_S * 1e3:.0f} ms apart (back to back they wait on the "
                 f"previous commit's markers), p99 {commit_ms.get('p99', float('nan')):.2f} ms",
            extra={"latency_ms": commit_ms}),
        Row("floor", "broker CPU per transaction (1 record, bare aiokafka)",
            broker_ms, "ms",
            note="ms of one core, the broker's idle CPU included: AddPartitionsToTxn, Produce, EndTxn, the "
                 "transaction log and the commit markers; a put costs one since the writer writes its pokes (two before: the writer's and the push projector's)"),
        Row("floor", "write round trip p50 (two hops, answer in a transaction)", percentile(writes, 50), "ms",
            note=f"{len(writes):,} sequential ping → transactional echo → pong read_committed (visible once the "
                 f"commit markers are written), p99 {write_ms.get('p99', float('nan')):.2f} ms",
            extra={"latency_ms": write_ms}),
    ]

"""The writer's Kafka adapter: single active member, fencing, group commit, exactly-once requests.

All writer processes of a deployment join one consumer group on the one-partition request topic,
so exactly one of them is assigned it: the active writer. On assignment it starts the role's
transactional producer (fencing any previous writer), waits until its view has read the log to the
end, continues versions from there and seeks to the group's committed offset. Each batch of
requests then becomes one transaction holding the log, history, response and DLQ records plus the
request offsets. A failed transaction is never half-applied: the writer re-activates and redoes the
batch from committed state. The standbys just wait in the group.

Example::

    writer = Writer(settings, materializer)
    await writer.run()          # until cancelled
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import ChainMap

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig import metrics
from eventconfig.kafka.reading import committed_consumer
from eventconfig.kafka.transactions import Fenced, TransactionalSender, TransactionFailed
from eventconfig.logrecords import OutRecord
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings
from eventconfig.view.materializer import Materializer
from eventconfig.writer.batch import BatchConfig, BatchResult, RawRequest, Waiting, process_batch
from eventconfig.writer.handler import Limits

log = logging.getLogger(__name__)

_CATCH_UP_TIMEOUT_S = 600.0


class _Membership(ConsumerRebalanceListener):
    """Tracks whether this process holds the request partition (i.e. is the active writer)."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self.writer.request_tp in revoked:
            await self.writer.step_down("partition revoked")

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if self.writer.request_tp in assigned:
            self.writer.needs_activation = True


class Writer:
    """Consumes requests and turns each batch into one transaction, while it is the active member."""

    def __init__(self, settings: Settings, materializer: Materializer) -> None:
        self.settings = settings
        self.materializer = materializer
        self.request_tp = TopicPartition(settings.topics.request, 0)
        self.group_id = settings.group_id("writer")
        self.config = BatchConfig(
            limits=Limits(settings.max_value_bytes, settings.max_items_per_request),
            min_version_wait_ms=settings.min_version_wait_ms,
            max_response_bytes=settings.max_message_bytes - 64 * 1024,
        )
        self.sender = TransactionalSender(settings, "writer")
        self.needs_activation = False
        self.active = False
        self.version = 0
        # Committed changes the view may not have applied yet, one segment per batch: (version, changes).
        self._pending: list[tuple[int, dict[ItemKey, Entry | None]]] = []
        self._waiting: list[Waiting] = []
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def wait_active(self, timeout: float) -> None:
        """Wait until this process is the active writer (tests, `serve` readiness)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def run(self) -> None:
        consumer = committed_consumer(self.settings, group_id=self.group_id, session_timeout_ms=6000,
                                      heartbeat_interval_ms=1500, max_poll_interval_ms=300_000)
        self._consumer = consumer
        await consumer.start()
        consumer.subscribe([self.request_tp.topic], listener=_Membership(self))
        log.info("writer joined its group; waiting to become active", extra={"fields": {"group": self.group_id}})
        try:
            while True:
                try:
                    await self._step(consumer)
                except KafkaError as exc:
                    log.warning("writer loop: %s; retrying in 1 s", exc)
                    await asyncio.sleep(1)
        finally:
            await self.step_down("stopping")
            await consumer.stop()

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        if self.needs_activation:
            await self._activate(consumer)
        if not self.active:
            await consumer.getmany(timeout_ms=200)  # drives group membership; nothing is ours
            return
        poll_ms = 10 if self._waiting else 100
        fetched = await consumer.getmany(self.request_tp, timeout_ms=poll_ms,
                                         max_records=self.settings.batch_max_requests)
        records = fetched.get(self.request_tp, [])
        if records or self._waiting:
            await self._process([RawRequest(r.offset, r.value, list(r.headers), r.key) for r in records],
                                [r.timestamp for r in records])

    async def _activate(self, consumer: AIOKafkaConsumer) -> None:
        self.needs_activation = False
        async with self._lock:
            started = time.monotonic()
            try:
                await self.sender.restart()  # fences the previous writer and aborts its open transaction
            except Fenced as exc:
                log.warning("could not take the writer role: %s", exc)
                return
            self.version = await self.materializer.wait_caught_up(_CATCH_UP_TIMEOUT_S)
            self._pending, self._waiting = [], []
            committed = await consumer.committed(self.request_tp)
            if committed is None:
                await consumer.seek_to_beginning(self.request_tp)
            else:
                consumer.seek(self.request_tp, committed)
            self.active = True
            self._ready.set()
            metrics.WRITER_ACTIVE.set(1)
            metrics.WRITER_VERSION.set(self.version)
            log.info("active writer", extra={"fields": {"version": self.version, "request_offset": committed,
                                                         "took_s": round(time.monotonic() - started, 3)}})

    async def step_down(self, reason: str) -> None:
        async with self._lock:
            if self.active:
                log.info("writer stepping down", extra={"fields": {"reason": reason}})
            self.active = False
            self._ready.clear()
            metrics.WRITER_ACTIVE.set(0)
            await self.sender.stop()

    async def _process(self, raw: list[RawRequest], timestamps: list[int]) -> None:
        async with self._lock:
            if not self.active:
                return
            started = time.monotonic()
            snapshot = self.materializer.store.snapshot()
            self._pending = [(v, changes) for v, changes in self._pending if v > snapshot.version]
            pending = ChainMap(*(changes for _, changes in reversed(self._pending)))
            result = process_batch(raw, snapshot, pending, self.version, self._waiting, self.config,
                                   now_ms=int(time.time() * 1000))
            offsets = {self.request_tp: raw[-1].offset + 1} if raw else None
            try:
                await self.sender.commit(_by_topic(self.settings, result), offsets=offsets, group_id=self.group_id)
            except (Fenced, TransactionFailed) as exc:
                await self._recover(exc)
                return
            if result.changes:
                self._pending.append((result.version, result.changes))
            self.version = result.version
            self._waiting = result.waiting
        _observe(result, started, timestamps)

    async def _recover(self, exc: Exception) -> None:
        """Called with the lock held: drop in-memory state; re-activate from committed state."""
        reason = "fenced" if isinstance(exc, Fenced) else "failed"
        metrics.TRANSACTION_FAILURES.labels(reason).inc()
        log.warning("writer transaction %s: %s", reason, exc)
        self.active = False
        self._ready.clear()
        metrics.WRITER_ACTIVE.set(0)
        if isinstance(exc, TransactionFailed):
            self.needs_activation = True  # redo the batch from committed state
        # Fenced: another writer holds the role; the group will tell us if we are assigned again.


def _by_topic(settings: Settings, result: BatchResult) -> dict[str, list[OutRecord]]:
    topics = settings.topics
    return {topics.log: result.log, topics.history: result.history, topics.response: result.responses,
            topics.dlq: result.dlq}


def _observe(result: BatchResult, started: float, timestamps: list[int]) -> None:
    now = time.time()
    metrics.BATCH_SECONDS.observe(time.monotonic() - started)
    metrics.BATCH_SIZE.observe(len(result.outcomes))
    metrics.WRITER_VERSION.set(result.version)
    for operation, outcome in result.outcomes:
        metrics.REQUESTS.labels(operation, outcome).inc()
    for ts in timestamps:
        metrics.REQUEST_LATENCY.observe(max(0.0, now - ts / 1000))


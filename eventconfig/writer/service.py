"""The writer's Kafka adapter: the exclusive ``writer`` role over the request topic.

Activation (see :mod:`eventconfig.kafka.exclusive`) fences the previous writer, then waits until
this process's view has read the log to its end and continues versions from there (or from the
history topic's last version, if that is higher). Each batch of
requests becomes one transaction holding the log, history, response and DLQ records plus the
request offsets (group commit, exactly-once request processing). The offset's metadata names the
reads still parked for a ``min_version``, which the next writer parks again after a fail-over.

Batches are pipelined: batch N+1 is handled (pure CPU) on top of batch N's results while N's
transaction commits, and its transaction begins once N's has committed. Nothing of N+1 is visible
before N is, and if N fails both are redone from committed state.

A transaction the broker refuses for good (:class:`RecordRefused`, e.g. a record over a topic's
``max.message.bytes``) would fail the same way on every redo. So its requests are redone one per
transaction; the one whose own transaction is refused is dead-lettered in a minimal form and skipped.

Example::

    writer = Writer(settings, materializer)
    await writer.run()          # until cancelled; active while this process holds the partition
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import ChainMap
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from eventconfig import metrics
from eventconfig.kafka.exclusive import ExclusiveRole
from eventconfig.kafka.reading import read_to_end
from eventconfig.kafka.topics import admin_client
from eventconfig.kafka.transactions import RecordRefused
from eventconfig.logrecords import OutRecord
from eventconfig.model import ID_HEADER, Entry, ItemKey, Version
from eventconfig.settings import Settings
from eventconfig.tasks import off_loop
from eventconfig.view.materializer import Materializer
from eventconfig.writer.auth import authenticator
from eventconfig.writer.batch import BatchConfig, BatchResult, RawRequest, Waiting, min_version_reads, process_batch
from eventconfig.writer.handler import Limits
from eventconfig.writer.policy import Policy
from eventconfig.writer.parking import parked_metadata, parked_span
from eventconfig.writer.history_tail import history_tail

log = logging.getLogger(__name__)

_CATCH_UP_TIMEOUT_S = 600.0
_OFF_LOOP_BYTES = 64 * 1024  # batches of more request bytes are handled in a worker thread


class Writer(ExclusiveRole):
    """Turns each batch of requests into one transaction while this process is the active writer."""

    def __init__(self, settings: Settings, materializer: Materializer) -> None:
        super().__init__(settings, "writer", settings.topics.request)
        self.max_records = settings.batch_max_requests
        self.materializer = materializer
        self.config = BatchConfig(
            limits=Limits(settings.max_value_bytes, settings.max_items_per_request, settings.max_name_bytes),
            min_version_wait_ms=settings.min_version_wait_ms,
            max_response_bytes=settings.max_response_bytes,
            max_id_bytes=settings.max_id_bytes,
            max_actor_bytes=settings.max_actor_bytes,
        )
        self.version = Version(0)
        self.chain_head = ""
        self.auth = authenticator(settings)
        self.policy = Policy.load(settings.policy_file) if settings.policy_file else None
        # Committed changes the view may not have applied yet, one segment per batch: (version, changes).
        self._pending: list[tuple[int, dict[ItemKey, Entry | None]]] = []
        self._waiting: list[Waiting] = []
        self._recovered: list[RawRequest] = []  # reads a predecessor left parked, handled first
        self._position: int | None = None  # the next request offset to commit
        self._last_batch = 0
        self._inflight: asyncio.Task[bool] | None = None
        # request offset -> why the broker refused its output (None: its dead letter was refused too)
        self._refused: dict[int, str | None] = {}
        self._isolate_below = 0  # requests before this offset are redone one per transaction

    async def settle(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            try:
                await inflight  # its failure, if any, is already handled by commit()
            except Exception:  # noqa: BLE001 - a bug; say so, the caller replaces the producer anyway
                log.exception("the writer's in-flight transaction failed unexpectedly")

    async def on_activate(self) -> dict[str, Any]:
        # Above every version in the log (the view's, never lowered by a stray marker) and the history.
        view_version = await self.materializer.wait_caught_up(_CATCH_UP_TIMEOUT_S)
        tail = await history_tail(self.settings)
        self.version = Version(max(view_version, tail.version))
        self.chain_head = tail.chain_head  # the hash chain continues across fail-over (docs/design.md §14.3)
        self._pending, self._waiting = [], []
        metrics.WRITER_VERSION.set(self.version)
        return {"version": self.version}

    async def on_resume(self, consumer: AIOKafkaConsumer, committed: int | None) -> dict[str, Any]:
        """Re-read the reads the previous writer left parked (named by the committed offset's
        metadata, see :mod:`eventconfig.writer.parking`), to park them again."""
        self._position, self._recovered = committed, []
        if self.auth is not None and committed is not None:
            await self._remember_accepted(consumer, committed)
        span = parked_span(await self._committed_metadata()) if committed is not None else None
        if span is None or committed is None:
            return {}
        consumer.seek(self.tp, span.first)
        raw = [_raw(r) async for batch in read_to_end(consumer, self.tp, until=committed) for r in batch
               if r.offset < committed and span.holds(r.offset)]
        self._recovered = raw if span.offsets is not None else min_version_reads(raw)
        return {"parked_reads": len(self._recovered)}

    async def _remember_accepted(self, consumer: AIOKafkaConsumer, committed: int) -> None:
        """Re-learn the signed requests a previous writer accepted within the window, so a replay of one
        is refused after a fail-over too (docs/design.md §14.1)."""
        assert self.auth is not None
        now_ms = int(time.time() * 1000)
        found = await consumer.offsets_for_times({self.tp: now_ms - 2 * self.auth.window_ms})
        start = found.get(self.tp)
        if start is None or start.offset >= committed:
            return
        consumer.seek(self.tp, start.offset)
        async for batch in read_to_end(consumer, self.tp, until=committed):
            for record in batch:
                if record.offset < committed:
                    request_id = dict(record.headers).get(ID_HEADER, b"").decode(errors="replace")
                    self.auth.observe(list(record.headers), request_id, record.offset, now_ms)

    async def _committed_metadata(self) -> str:
        async with admin_client(self.settings) as admin:
            offsets = await admin.list_consumer_group_offsets(self.group_id, partitions=[self.tp])
        committed = offsets.get(self.tp)
        return committed.metadata if committed is not None else ""

    def poll_ms(self) -> int | None:
        return 10 if self._waiting or self._recovered else None  # waiting reads need their deadlines checked

    def linger_ms(self) -> int:
        return self.settings.writer_linger_ms if self._last_batch > 1 else 0

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        started = time.monotonic()
        raw = [*self._recovered, *map(_raw, records)]
        self._recovered = []
        self._last_batch = len(records)
        with self.materializer.store.snapshot() as snapshot:
            self._pending = [(v, changes) for v, changes in self._pending if v > snapshot.version]
            pending = ChainMap(*(changes for _, changes in reversed(self._pending)))
            process = functools.partial(process_batch, raw, snapshot, pending, self.version, self._waiting,
                                        self.config, now_ms=int(time.time() * 1000), refused=self._refused,
                                        chain_head=self.chain_head, auth=self.auth, policy=self.policy)
            # Decoding and handling a large batch (a 10,000-item put) is pure CPU: in a worker thread,
            # heartbeats and the pipelined commit keep running; a small one is not worth the hand-off.
            large = sum(len(r.value or b"") for r in raw) > _OFF_LOOP_BYTES
            result = await off_loop(process) if large else process()
        if not raw and not (result.responses or result.dlq):
            self._waiting = result.waiting
            return
        # Speculatively continue from this batch; a failed commit makes re-activation drop it all.
        if result.changes:
            self._pending.append((result.version, result.changes))
        self.version = result.version
        self.chain_head = result.chain_head
        self._waiting = result.waiting
        previous, self._inflight = self._inflight, None
        if previous is not None and not await previous:
            return  # the previous transaction failed: this batch is redone after re-activation
        if records:
            self._position = records[-1].offset + 1
        self._inflight = asyncio.create_task(
            self._commit(result, [r.offset for r in records], self._position, started,
                         [r.timestamp for r in records]))

    async def _commit(self, result: BatchResult, offsets: list[int], next_offset: int | None, started: float,
                      timestamps: list[int]) -> bool:
        """Commit one batch; ``offsets`` are the request records it consumed, ``next_offset`` the
        request offset to commit (with the parked reads as its metadata)."""
        parked = parked_metadata(w.offset for w in result.waiting)
        if not await self.commit(_by_topic(self.settings, result), next_offset, parked):
            if isinstance(self.commit_error, RecordRefused) and offsets:
                self._isolate(offsets, self.commit_error, alone=len(offsets) == 1 and not result.answered_waiting)
            return False
        if offsets and offsets[-1] + 1 >= self._isolate_below:
            self.max_records = self.settings.batch_max_requests
            self._refused = {}
        _observe(result, started, timestamps)
        return True

    def _isolate(self, offsets: list[int], error: RecordRefused, *, alone: bool) -> None:
        """After a refused transaction: redo its requests one per transaction, or, if it held the output
        of a single request and nothing else, remember that request as the culprit so the redo
        dead-letters it. (Waiting reads it also answered are dropped by the re-activation.)"""
        if alone:
            # Refused again once it was only a dead letter: skip it without one.
            reason = None if offsets[0] in self._refused else str(error)
            self._refused[offsets[0]] = reason
            log.error("the broker refused the output of one request; it goes to the DLQ" if reason else
                      "the broker refused the dead letter of a request too; it is skipped",
                      extra={"fields": {"offset": offsets[0], "error": str(error)}})
        else:
            log.warning("the broker refused a transaction; redoing its requests one at a time",
                        extra={"fields": {"offsets": f"{offsets[0]}-{offsets[-1]}", "error": str(error)}})
        self._isolate_below = max(self._isolate_below, offsets[-1] + 1)
        self.max_records = 1


def _raw(record: ConsumerRecord) -> RawRequest:
    return RawRequest(record.offset, record.value, list(record.headers), record.key)


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

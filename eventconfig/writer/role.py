"""The writer's Kafka adapter: the exclusive ``writer`` role over the request topic.

Activation (see :mod:`eventconfig.kafka.exclusive`) fences the previous writer, then waits until
this process's view has read the log to its end and continues versions from there (or from the
history topic's last version, if that is higher). The writes and errors of each batch of requests
become one transaction holding the log, history, response and DLQ records plus the request offsets
(group commit, exactly-once request processing). Reads take no transaction: the
:class:`~eventconfig.writer.reads.ReadAnswerer` answers them from the view once the transactions
holding the requests before them have committed (docs/design.md §6). The committed offset's metadata names the reads not
answered yet, which the next writer reads again after a fail-over; a stretch of reads alone is
committed now and then with a plain offset commit, so a fail-over does not answer it all again.

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
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

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
from eventconfig.writer.batch import BatchConfig, BatchResult, RawRequest, process_batch, read_requests
from eventconfig.writer.handler import Limits
from eventconfig.writer.policy import Policy
from eventconfig.writer.parking import parked_metadata, parked_span
from eventconfig.writer.history_tail import history_tail
from eventconfig.writer.reads import ReadAnswerer
from eventconfig.writer.resume_point import ResumePoint, furthest, last_stamped, stamped

log = logging.getLogger(__name__)

_CATCH_UP_TIMEOUT_S = 600.0
_READS_COMMIT_S = 1.0  # a stretch of reads alone commits its request offset at most this often
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
        self.reads = ReadAnswerer(settings, materializer, self.config, self.policy)
        self._recovered: list[RawRequest] = []  # reads a predecessor left unanswered, handled first
        self._position: int | None = None  # the next request offset to commit
        self._last_batch = 0
        self._inflight: asyncio.Task[bool] | None = None
        # request offset -> why the broker refused its output (None: its dead letter was refused too)
        self._refused: dict[int, str | None] = {}
        self._isolate_below = 0  # requests before this offset are redone one per transaction
        self._offset_committed = 0.0  # monotonic time of the last commit of the request offset
        self._uncommitted = False  # reads alone moved the position past the committed offset
        self._transactions = 0  # begun in this activation; the reads after one wait until it committed
        self._resume_parked = ""  # the metadata of the committed offset this writer resumed from

    async def run(self) -> None:
        await self.reads.start()
        try:
            await super().run()
        finally:
            await self.reads.stop()

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
        self._pending = []
        self.reads.clear()  # those not committed as answered are read again from the request topic
        self._transactions = 0
        metrics.WRITER_VERSION.set(self.version)
        return {"version": self.version}

    async def committed_offset(self, consumer: AIOKafkaConsumer) -> int | None:
        """The further of the group's committed offset and the one on the log's last commit marker."""
        point = furthest(await self._group_point(), await last_stamped(self.settings))
        self._resume_parked = point.parked if point is not None else ""
        return point.offset if point is not None else None

    async def on_resume(self, consumer: AIOKafkaConsumer, committed: int | None) -> dict[str, Any]:
        """Re-read the reads the previous writer left unanswered (named by the committed offset's
        metadata, see :mod:`eventconfig.writer.parking`), to answer them."""
        self._position, self._recovered, self._uncommitted = committed, [], False
        if self.auth is not None and committed is not None:
            await self._remember_accepted(consumer, committed)
        span = parked_span(self._resume_parked) if committed is not None else None
        if span is None or committed is None:
            return {}
        consumer.seek(self.tp, span.first)
        raw = [_raw(r) async for batch in read_to_end(consumer, self.tp, until=committed) for r in batch
               if r.offset < committed and span.holds(r.offset)]
        self._recovered = raw if span.offsets is not None else read_requests(raw)
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

    async def _group_point(self) -> ResumePoint | None:
        async with admin_client(self.settings) as admin:
            offsets = await admin.list_consumer_group_offsets(self.group_id, partitions=[self.tp])
        committed = offsets.get(self.tp)
        if committed is None or committed.offset < 0:  # nothing committed to the group
            return None
        return ResumePoint(committed.offset, committed.metadata or "")

    def poll_ms(self) -> int | None:
        if self._recovered:
            return 10  # recovered reads are handled without waiting for a request
        if self._uncommitted:  # then commit the position reads alone moved, without waiting for a request
            return max(1, int((self._offset_committed + _READS_COMMIT_S - time.monotonic()) * 1000))
        return None

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
            process = functools.partial(process_batch, raw, snapshot, pending, self.version, self.config,
                                        now_ms=int(time.time() * 1000), refused=self._refused,
                                        chain_head=self.chain_head, auth=self.auth, policy=self.policy)
            # Decoding and handling a large batch (a 10,000-item put) is pure CPU: in a worker thread,
            # heartbeats and the pipelined commit keep running; a small one is not worth the hand-off.
            large = sum(len(r.value or b"") for r in raw) > _OFF_LOOP_BYTES
            result = await off_loop(process) if large else process()
        transaction = bool(result.log or result.history or result.responses or result.dlq)
        self.reads.add(result.reads, commits=self._transactions + int(transaction))
        if records:
            self._position = records[-1].offset + 1  # redone from the committed offset if a commit fails
        if not transaction:
            self._uncommitted = self._uncommitted or bool(records)
            await self._commit_reads()
            return
        # Speculatively continue from this batch; a failed commit makes re-activation drop it all.
        if result.changes:
            self._pending.append((result.version, result.changes))
        self.version = result.version
        self.chain_head = result.chain_head
        previous, self._inflight = self._inflight, None
        if previous is not None and not await previous:
            return  # the previous transaction failed: this batch is redone after re-activation
        self._offset_committed, self._uncommitted = time.monotonic(), False
        self._transactions += 1
        self._inflight = asyncio.create_task(
            self._commit(result, [r.offset for r in records], self._position, parked_metadata(self.reads.offsets()),
                         started, [r.timestamp for r in records]))

    async def _commit(self, result: BatchResult, offsets: list[int], next_offset: int | None, parked: str,
                      started: float, timestamps: list[int]) -> bool:
        """Commit one batch; ``offsets`` are the request records it consumed, ``next_offset`` the
        request offset to commit with ``parked``, the reads not answered yet, as its metadata."""
        records = _by_topic(self.settings, result)
        if result.log and next_offset is not None:  # the offset goes on the last commit marker
            records[self.settings.topics.log] = stamped(result.log, ResumePoint(next_offset, parked))
            next_offset = None
        if not await self.commit(records, next_offset, parked):
            self.reads.abandon()
            if isinstance(self.commit_error, RecordRefused) and offsets:
                self._isolate(offsets, self.commit_error, alone=len(offsets) == 1)
            return False
        self.reads.committed()
        if offsets and offsets[-1] + 1 >= self._isolate_below:
            self.max_records = self.settings.batch_max_requests
            self._refused = {}
        _observe(result, started, timestamps)
        return True

    async def _commit_reads(self) -> None:
        """After a batch of reads alone: now and then, once every write before it has committed,
        commit the request offset outside a transaction (the reads not answered yet as its metadata)."""
        if not self._uncommitted or self._position is None or \
                time.monotonic() - self._offset_committed < _READS_COMMIT_S:
            return
        previous, self._inflight = self._inflight, None
        if previous is not None and not await previous:
            return
        self._offset_committed, self._uncommitted = time.monotonic(), False
        assert self.consumer is not None
        offset = OffsetAndMetadata(self._position, parked_metadata(self.reads.offsets()))
        try:
            await self.consumer.commit({self.tp: offset})
        except KafkaError as exc:  # e.g. no longer a member: the successor answers these reads again
            log.warning("could not commit the request offset after reads", extra={"fields": {
                "offset": self._position, "error": str(exc) or type(exc).__name__}})

    def _isolate(self, offsets: list[int], error: RecordRefused, *, alone: bool) -> None:
        """After a refused transaction: redo its requests one per transaction, or, if it held the output
        of a single request and nothing else, remember that request as the culprit so the redo
        dead-letters it."""
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

"""Answering reads from the view, outside the writer's transactions (docs/design.md §6).

The writer hands every read it consumes to a :class:`ReadAnswerer`. Once per round, for the reads
that arrived since the last round, one ListOffsets request (``read_committed``) takes the log's last
stable offset: their ``barrier``. A read is answered from the view as soon as the view's position
has reached its barrier and its version the read's own (see :class:`~eventconfig.writer.batch.Waiting`);
the answer goes out through a plain idempotent producer. A read the view does not get to by its
deadline is answered ``timeout``.

That is linearizable without a lease: every write whose response anybody has seen was committed
before the read was sent, so it is below the barrier. An answer is therefore right whoever gives it,
the active writer or a fenced zombie whose view lags: the zombie waits for its view or times out.

Example::

    answerer = ReadAnswerer(settings, materializer, config)
    await answerer.start()
    answerer.add(result.reads)          # answered in the background
    answerer.offsets()                  # the reads not answered yet, committed as parked
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig import metrics, model
from eventconfig.errors import EventConfigError
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.kafka.transactions import PlainSender, RecordRefused
from eventconfig.logrecords import OutRecord
from eventconfig.settings import Settings
from eventconfig.tasks import cancel
from eventconfig.view.materializer import Materializer
from eventconfig.writer.batch import BatchConfig, RawRequest, Waiting, answer_reads, unproducible
from eventconfig.writer.policy import Policy

log = logging.getLogger(__name__)

_RECHECK_S = 1.0  # deadlines are checked at least this often
_RETRY_S = 0.5  # after a failed offset lookup or send


class ReadAnswerer:
    """The reads consumed and not yet answered, and the background task that answers them."""

    def __init__(self, settings: Settings, materializer: Materializer, config: BatchConfig,
                 policy: Policy | None = None) -> None:
        self.settings = settings
        self.materializer = materializer
        self.config = config
        self.policy = policy  # what each reader may read (docs/design.md §14.2), checked when answering
        self._log = TopicPartition(settings.topics.log, 0)
        self._reads: list[Waiting] = []
        self._added = asyncio.Event()
        self._sender = PlainSender(settings)
        self._offsets: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Used for ListOffsets only: a consumer that fetches would hold each lookup behind its long poll.
        self._offsets = committed_consumer(self.settings)
        try:
            await self._offsets.start()
            await self._sender.start()
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="reads")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self._sender.stop()
        if self._offsets is not None:
            offsets, self._offsets = self._offsets, None
            await offsets.stop()

    def add(self, reads: Sequence[Waiting]) -> None:
        if reads:
            self._reads.extend(reads)
            self._added.set()

    def clear(self) -> None:
        """Forget every read (a new activation re-reads the ones not committed as answered)."""
        self._reads = []

    def waiting(self) -> list[Waiting]:
        """The reads not answered yet."""
        return list(self._reads)

    def offsets(self) -> list[int]:
        """The request offsets of the reads not answered yet."""
        return [read.offset for read in self._reads]

    async def _run(self) -> None:
        while True:
            try:
                await self._round()
            except (KafkaError, EventConfigError) as exc:  # the reads stay; they are retried
                log.warning("answering reads failed; retrying", extra={"fields": {
                    "error": str(exc) or type(exc).__name__, "reads": len(self._reads), "retry_in_s": _RETRY_S}})
                await asyncio.sleep(_RETRY_S)

    async def _round(self) -> None:
        if not self._reads:
            await self._added.wait()
        self._added.clear()
        fresh = {id(read) for read in self._reads if read.barrier is None}
        if fresh:
            assert self._offsets is not None
            barrier = await end_offset(self._offsets, self._log)  # taken after every fresh read was consumed
            self._reads = [replace(read, barrier=barrier) if id(read) in fresh else read for read in self._reads]
        await self._answer()
        if self._reads and not self._added.is_set():
            await self._wait()

    async def _answer(self) -> None:
        """Answer every read the view may answer now, and those past their deadline."""
        position, version, now_ms = self.materializer.position, self.materializer.version, int(time.time() * 1000)
        if not any(read.ready(version, position) or now_ms >= read.deadline_ms for read in self._reads):
            return
        reads = self._reads
        with self.materializer.store.snapshot() as snapshot:  # holds at least everything below position
            result, self._reads = answer_reads(reads, snapshot, position, self.config, now_ms, policy=self.policy)
        later = {id(read) for read in self._reads}
        answered = [read for read in reads if id(read) not in later]  # one response each, in order
        try:
            try:
                await self._sender.send({self.settings.topics.response: result.responses})
            except RecordRefused:
                await self._one_by_one(answered, result.responses)
        except BaseException:
            self._reads = answered + self._reads  # answered again
            raise
        for operation, outcome in result.outcomes:
            metrics.REQUESTS.labels(operation, outcome).inc()

    async def _one_by_one(self, reads: list[Waiting], responses: list[OutRecord]) -> None:
        """After the broker refused a record of a round: send each answer alone, and dead-letter the
        read whose answer is refused (docs/design.md §5.4, ``Unproducible``) or, refused too, skip it."""
        for read, response in zip(reads, responses):
            try:
                await self._sender.send({self.settings.topics.response: [response]})
                continue
            except RecordRefused as exc:
                reason = str(exc)
            request = RawRequest(read.offset, None, [(model.ID_HEADER, read.request_id.encode())])
            try:
                await self._sender.send({self.settings.topics.dlq: [unproducible(request, reason)]})
                outcome = "dlq"
            except RecordRefused:
                outcome = "skipped"
            metrics.REQUESTS.labels("?", outcome).inc()
            log.error("the broker refused the answer to a read", extra={"fields": {
                "offset": read.offset, "error": reason, "outcome": outcome}})

    async def _wait(self) -> None:
        """Until the view moves, a read arrives, or the next deadline (at most _RECHECK_S)."""
        now_ms = int(time.time() * 1000)
        timeout = min(_RECHECK_S, max(0.0, (min(read.deadline_ms for read in self._reads) - now_ms) / 1000))
        waiters = [asyncio.create_task(self.materializer.changed(timeout)), asyncio.create_task(self._added.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel(*waiters)

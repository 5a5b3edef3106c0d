"""Answering reads from the view, outside the writer's transactions (docs/design.md §6).

The writer hands every read it consumes to a :class:`ReadAnswerer`, with the number of its own
transactions (of this activation) that must commit first: those that hold the requests before the
read in the request topic. A read is answered from the view once they have committed and the view
holds the version of every write before it (see :class:`~eventconfig.writer.batch.Waiting`); the
answer goes out through a plain idempotent producer. A read the view does not get to by its
deadline is answered ``timeout``.

That is linearizable without a lease and without a round trip. Only the writer writes the log, and
only for requests of the one request topic, consumed in order. A write committed before the read
was sent (whatever showed it: its response, a poke, a value) lies before the read in that topic, so
this writer handled it too: in a transaction of its own that committed (then its view holds it), or
that failed because a successor fenced it (then the read is dropped, never answered stale: the
successor reads it again). A commit proves the writer was not fenced when it committed; a fenced
writer's later commits fail.

Example::

    answerer = ReadAnswerer(settings, materializer, config)
    await answerer.start()
    answerer.add(result.reads, commits=2)   # answered once 2 transactions have committed
    answerer.committed()                    # one more has
    answerer.offsets()                      # the reads not answered yet, committed as parked
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from eventconfig.kafka.adapter import KafkaError

from eventconfig import metrics
from eventconfig.errors import EventConfigError
from eventconfig.kafka.transactions import PlainSender
from eventconfig.settings import Settings
from eventconfig.tasks import cancel
from eventconfig.view.materializer import Materializer
from eventconfig.writer.answer_sending import answered_reads, read_answers, send_answers
from eventconfig.writer.batch import BatchConfig, Waiting, answer_reads
from eventconfig.writer.policy import Policy

log = logging.getLogger(__name__)

_RECHECK_S = 1.0  # deadlines are checked at least this often
_RETRY_S = 0.5  # after a failed offset lookup or send


class ReadAnswerer:
    """The reads consumed and not yet answered, and the background task that answers them."""

    def __init__(self, settings: Settings, materializer: Materializer, config: BatchConfig,
                 policy: Policy | None = None, sender: PlainSender | None = None) -> None:
        self.settings = settings
        self.materializer = materializer
        self.config = config
        self.policy = policy  # what each reader may read (docs/design.md §14.2), checked when answering
        self._reads: list[Waiting] = []
        self._committed = 0  # the writer's transactions of this activation that committed
        self._broken = False  # one of them failed: no later one commits in this activation
        self._activation = 0  # counts clear(): answers sent across one are not put back
        self._news = asyncio.Event()  # a read arrived or a transaction committed
        self._sender = sender or PlainSender(settings)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._sender.start()
        self._task = asyncio.create_task(self._run(), name="reads")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self._sender.stop()

    def add(self, reads: Sequence[Waiting], commits: int) -> None:
        """Answer ``reads`` once ``commits`` transactions of this activation have committed."""
        if reads and not (self._broken and commits > self._committed):
            self._reads.extend(replace(read, commits=commits) for read in reads)
            self._news.set()

    def committed(self) -> None:
        """One more transaction of this activation committed (they commit in order)."""
        self._committed += 1
        self._news.set()

    def abandon(self) -> None:
        """A transaction failed: drop the reads that wait for it or a later one. They lie above the
        committed request offset, so whoever holds the role next reads them again."""
        self._broken = True
        self._reads = [read for read in self._reads if read.commits <= self._committed]

    def clear(self) -> None:
        """A new activation: forget every read (it re-reads the ones not committed as answered)."""
        self._reads, self._committed, self._broken = [], 0, False
        self._activation += 1

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
            await self._news.wait()
        self._news.clear()
        await self._answer()
        if self._reads and not self._news.is_set():
            await self._wait()

    async def _answer(self) -> None:
        """Answer every read the view may answer now, and those past their deadline."""
        version, now_ms = self.materializer.version, int(time.time() * 1000)
        if not any(read.ready(version, self._committed) or now_ms >= read.deadline_ms for read in self._reads):
            return
        reads, activation = self._reads, self._activation
        with self.materializer.store.snapshot() as snapshot:
            result, self._reads = answer_reads(reads, snapshot, self._committed, self.config, now_ms,
                                               policy=self.policy)
        answered = answered_reads(reads, self._reads)  # taken now: abandon() may drop others during the send
        try:
            counted = await send_answers(self._sender, self.settings.topics.dlq,
                                         read_answers(answered, result, self.settings.topics.response),
                                         source=self.settings.topics.request)
        except BaseException:
            if activation == self._activation:  # a new activation re-reads them itself
                self._reads = answered + self._reads  # answered again
            raise
        for operation, outcome in counted:
            metrics.REQUESTS.labels(operation, outcome).inc()

    async def _wait(self) -> None:
        """Until the view moves, a read arrives, a transaction commits, or the next deadline (at most
        _RECHECK_S)."""
        now_ms = int(time.time() * 1000)
        timeout = min(_RECHECK_S, max(0.0, (min(read.deadline_ms for read in self._reads) - now_ms) / 1000))
        waiters = [asyncio.create_task(self.materializer.changed(timeout)), asyncio.create_task(self._news.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel(*waiters)

"""Answering the reads of the read topic on every ``serve`` process, active or standby (docs/design.md §6).

Every ``serve`` process is a member of one consumer group over the read topic, whose partitions the
group shares out. For each batch of reads it consumes, a process looks up the log's high watermark
(its end offset counting open transactions) *after* consuming them, and answers each read from its
view once the view's position has reached that offset (and the read's ``min_version``). A
``read_committed`` view passes an offset only once every transaction below it is decided, so the view
then holds every write acknowledged before the read was sent: that write's records were appended to
the log before its transaction committed, and its response (in the same transaction) was visible only
after that, so before the read was produced, consumed, and the offset looked up. The answers go out
through a plain idempotent producer; the batch's read offsets are committed only after every read of it
is answered, so reads in flight when a process dies or stalls are read again by the member that takes
its partitions over (a read answered twice is harmless: clients ignore ids they no longer wait for).

Example::

    server = ReadServer(settings, materializer)
    await server.run()      # until cancelled
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from eventconfig import metrics
from eventconfig.errors import EventConfigError
from eventconfig.kafka.adapter import ConsumerRecord, KafkaError, TopicPartition
from eventconfig.kafka.shared_group import SharedGroup
from eventconfig.kafka.transactions import PlainSender
from eventconfig.model import Version
from eventconfig.settings import Settings
from eventconfig.tasks import Backoff
from eventconfig.view.materializer import Materializer
from eventconfig.writer.answer_sending import Answer, answered_reads, read_answers, send_answers
from eventconfig.writer.auth import authenticator
from eventconfig.writer.batch import BatchConfig, RawRequest, Waiting, answer_reads, process_batch
from eventconfig.writer.rules import ServiceRules

log = logging.getLogger(__name__)

_POLL_MS = 500
_MAX_READS = 500
_RECHECK_S = 0.5  # a waiting batch looks at its deadlines at least this often
_RETRY_S = 0.5
_RETRY_MAX_S = 10.0  # a lasting failure (a missing ACL) is logged this often


def behind(reads: Sequence[Waiting], end: int) -> list[Waiting]:
    """``reads`` made to wait for a view whose log position is at least ``end`` (the log's high watermark
    looked up after they were consumed): :meth:`Waiting.ready` then compares ``end`` with the position."""
    return [replace(read, commits=end) for read in reads]


class ReadServer:
    """Consumes the read topic as a member of the readers' group and answers from this process's view."""

    def __init__(self, settings: Settings, materializer: Materializer, config: BatchConfig) -> None:
        self.settings, self.materializer, self.config = settings, materializer, config
        self.rules = ServiceRules.from_settings(settings)  # the keyring and policy, re-read while running (§14.4)
        keyring, self.policy = self.rules.current()
        self.auth = authenticator(settings, keyring)
        self.group = SharedGroup(settings, settings.readers_group, settings.topics.read,
                                 TopicPartition(settings.topics.log, 0), on_held=metrics.READ_TOPIC_PARTITIONS.set)
        self._sender = PlainSender(settings)

    async def run(self) -> None:
        """Answer reads until cancelled; Kafka errors are logged and retried (the reads are re-read), so
        a failure of the read topic never stops the process's roles."""
        await self._sender.start()
        try:
            await self.group.start()
            log.info("answering reads of the read topic", extra={"fields": {"topic": self.settings.topics.read}})
            backoff = Backoff(_RETRY_S, _RETRY_MAX_S)
            while True:
                try:
                    records = await self.group.fetch(_POLL_MS, _MAX_READS)
                except KafkaError as exc:  # e.g. no ACL for the readers' group yet: the writer role goes on
                    await self._retry("reading the read topic failed", exc, backoff.next())
                    continue
                backoff.reset()
                if records:
                    await self._handle(records)
        finally:
            await self.group.stop()
            await self._sender.stop()

    async def _handle(self, records: Sequence[ConsumerRecord]) -> None:
        raw = [RawRequest(r.offset, r.value, list(r.headers), r.key) for r in records]
        keyring, self.policy = self.rules.current()
        if self.auth is not None and keyring is not None:
            self.auth.keyring = keyring
        while True:
            try:
                end = await self.group.high_watermark()  # after consuming the reads: covers every write before them
                break
            except KafkaError as exc:
                await self._retry("looking up the log's end failed", exc)
        topics, now_ms = self.settings.topics, int(time.time() * 1000)
        with self.materializer.store.snapshot() as snapshot:
            # One result per request, so that a record the broker refuses singles out its request.
            results = [process_batch([request], snapshot, {}, Version(snapshot.version), self.config, now_ms,
                                     auth=self.auth, policy=self.policy, reads_only=True) for request in raw]
        # Refusals (writes, bad requests) and dead letters.
        await self._send([Answer(request, {topics.response: result.responses, topics.dlq: result.dlq},
                                 result.outcomes) for request, result in zip(raw, results)])
        reads = behind([read for result in results for read in result.reads], end)
        while reads:
            position = self.materializer.position  # before the snapshot: the snapshot holds at least this much
            with self.materializer.store.snapshot() as snapshot:
                result, later = answer_reads(reads, snapshot, position, self.config, int(time.time() * 1000),
                                             policy=self.policy, log_offsets=True)
            await self._send(read_answers(answered_reads(reads, later), result, topics.response))
            reads = later
            if reads:
                await self.materializer.changed(_RECHECK_S)
        handled: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            handled[tp] = max(record.offset + 1, handled.get(tp, 0))
        self.group.commit_soon(handled)  # only once answered: a process that dies before leaves them to others

    async def _send(self, answers: Sequence[Answer]) -> None:
        """Send ``answers`` until the broker takes them (or refuses some for good: they are dead-lettered)."""
        topics = self.settings.topics
        while True:
            try:
                counted = await send_answers(self._sender, topics.dlq, answers, source=topics.read)
                break
            except (KafkaError, EventConfigError) as exc:
                await self._retry("sending answers failed", exc)
        for operation, outcome in counted:
            metrics.READ_TOPIC_ANSWERS.labels(outcome).inc()
            metrics.REQUESTS.labels(operation, outcome).inc()

    @staticmethod
    async def _retry(what: str, exc: BaseException, wait: float = _RETRY_S) -> None:
        log.warning(f"{what}; retrying", extra={"fields": {"error": str(exc) or type(exc).__name__,
                                                           "retry_in_s": wait}})
        await asyncio.sleep(wait)

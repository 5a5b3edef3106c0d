"""The transactional producer's whole lifecycle, in one place.

A role (writer, projector) owns one fixed ``transactional_id``. Starting a :class:`TransactionalSender`
registers that id with the broker, which fences any older producer with it and aborts its open
transaction: after ``start()`` returns, the log holds no open transaction of this role, so reading
it to the end is safe. ``commit()`` writes a batch of records and consumer offsets in ONE
transaction. Failures come back as two typed errors the caller can act on:

* :class:`Fenced`: another process took the role; stop acting as it.
* :class:`TransactionFailed`: the outcome is unknown or the transaction aborted; recreate the
  sender (``restart()``) and redo the work from committed state. A transaction that can still be
  aborted is aborted before the producer stops, so it does not hold back read_committed readers.
* :class:`RecordRefused` (a TransactionFailed): the broker refused a record for good (too large for
  the topic, invalid); redoing the same records fails the same way, so the caller must leave one out.

Example::

    sender = TransactionalSender(settings, "writer")
    await sender.start()
    await sender.commit({"t.log": records}, offsets={tp: 42}, group_id="g")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from eventconfig.errors import EventConfigError
from eventconfig.kafka import adapter
from eventconfig.kafka.adapter import OUT_OF_STEP, REFUSALS, KafkaError, ProducerFenced, TopicPartition
from eventconfig.kafka.connect import start_or_close
from eventconfig.kafka.records import OutRecord
from eventconfig.settings import Settings

log = logging.getLogger(__name__)


class Fenced(EventConfigError):
    """A newer producer with the same transactional id is active; this process must step down."""


class TransactionFailed(EventConfigError):
    """The transaction did not commit (or its outcome is unknown); redo from committed state."""


class RecordRefused(TransactionFailed):
    """The broker refused a record permanently; the same transaction would fail again."""


class TransactionalSender:
    """One transactional producer with a fixed id, restartable after failures."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.transactional_id = settings.transactional_id(role)
        self._producer: adapter.AIOKafkaProducer | None = None

    @property
    def running(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Create the producer and wait until its id is registered (fencing older ones)."""
        producer = adapter.transactional_producer(self.settings, self.transactional_id)
        await producer.start()
        try:
            await adapter.fence(producer)
        except ProducerFenced as exc:
            await producer.stop()
            raise Fenced(str(exc)) from exc
        except KafkaError:
            await producer.stop()
            raise
        self._producer = producer
        log.info("transactional producer ready", extra={"fields": {"transactional_id": self.transactional_id}})

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except KafkaError as exc:  # stopping a fenced/broken producer may fail; it is gone anyway
                log.debug("producer stop failed: %s", exc)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def commit(self, records: Mapping[str, Sequence[OutRecord]], *,
                     offsets: Mapping[TopicPartition, int | tuple[int, str]] | None = None,
                     group_id: str = "") -> None:
        """Produce ``records`` (topic → records) and commit ``offsets`` (each an offset, or an offset
        and its metadata) for ``group_id`` atomically."""
        producer = self._producer
        if producer is None:
            raise TransactionFailed("the transactional producer is not running")
        try:
            partitions = await adapter.routes(producer, records)
            await producer.begin_transaction()
            await adapter.send(producer, records, partitions)
            if offsets:
                await producer.send_offsets_to_transaction(dict(offsets), group_id)
            await producer.commit_transaction()
        except ProducerFenced as exc:
            adapter.forget_failure(producer)
            await self.stop()
            raise Fenced(str(exc)) from exc
        except REFUSALS as exc:
            await self._give_up(producer)
            raise RecordRefused(f"{type(exc).__name__}: {exc}") from exc
        except (KafkaError, asyncio.TimeoutError) as exc:
            await self._give_up(producer)
            raise TransactionFailed(f"{type(exc).__name__}: {exc}") from exc

    async def _give_up(self, producer: adapter.AIOKafkaProducer) -> None:
        """After a failed transaction: abort it if it still can be, then drop the producer."""
        await self._abort(producer)
        adapter.forget_failure(producer)
        await self.stop()

    async def _abort(self, producer: adapter.AIOKafkaProducer) -> None:
        """End a failed transaction now: left open, it pins the last stable offset of every partition
        it touched (read_committed readers stall) until the broker times it out."""
        if not adapter.abortable(producer):  # committing (outcome unknown) or fatal: nothing to abort
            return
        try:
            await asyncio.wait_for(producer.abort_transaction(), self.settings.request_timeout_ms / 1000)
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.warning("could not abort the failed transaction: %s", str(exc) or type(exc).__name__,
                        extra={"fields": {"transactional_id": self.transactional_id}})


class PlainSender:
    """An idempotent producer outside any transaction, for output that needs no atomicity with the
    input offsets: the answers to reads (docs/design.md §6), which a re-consumed read only repeats.

    After the broker refuses a record for good, or says the producer's sequence numbers are out of
    step (``OutOfOrderSequenceNumber``, ``UnknownProducerId``: errors no retry cures), the next send
    first replaces the producer: aiokafka's idempotent producer does not take back the sequence
    numbers of a refused batch, so the broker would refuse every later batch to that partition for
    good. The old producer is closed within ``request_timeout_ms``. Sends are not concurrent (each
    caller sends from one task)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: adapter.AIOKafkaProducer | None = None
        self._replace = False  # the producer's sequence numbers of some partition are past the broker's

    async def start(self) -> None:
        producer = adapter.idempotent_producer(self.settings)
        await start_or_close(producer)
        self._producer, self._replace = producer, False

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(self, records: Mapping[str, Sequence[OutRecord]]) -> None:
        """Produce ``records`` (topic → records) and wait for the acknowledgements; RecordRefused when
        the broker refuses a record for good (some of the others may have been written), else KafkaError."""
        if self._producer is None:
            raise EventConfigError("the read producer is not running")
        if self._replace:  # a new producer id starts every partition's sequence afresh
            old = self._producer
            await self.start()
            with contextlib.suppress(Exception):  # its unsent batches are answers: a read is answered again
                await asyncio.wait_for(old.stop(), self.settings.request_timeout_ms / 1000)
        try:
            await adapter.send(self._producer, records, await adapter.routes(self._producer, records))
        except OUT_OF_STEP:
            self._replace = True
            raise
        except REFUSALS as exc:
            self._replace = True
            raise RecordRefused(f"{type(exc).__name__}: {exc}") from exc

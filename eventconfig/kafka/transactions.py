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
import logging
import zlib
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (CorruptRecordException, InvalidMessageError, InvalidTimestampError, KafkaError,
                             MessageSizeTooLargeError, ProducerFenced, RecordListTooLargeError, RecordTooLargeError)
from aiokafka.producer.transaction_manager import TransactionState

from eventconfig.errors import EventConfigError
from eventconfig.logrecords import OutRecord
from eventconfig.settings import Settings

log = logging.getLogger(__name__)

# aiokafka's transaction states from which abort_transaction() is a valid transition.
_ABORTABLE = frozenset({TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR})


class Fenced(EventConfigError):
    """A newer producer with the same transactional id is active; this process must step down."""


class TransactionFailed(EventConfigError):
    """The transaction did not commit (or its outcome is unknown); redo from committed state."""


class RecordRefused(TransactionFailed):
    """The broker refused a record permanently; the same transaction would fail again."""


# Produce errors that retrying cannot cure: the records themselves are unacceptable to the broker.
_REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, CorruptRecordException,
             InvalidMessageError, InvalidTimestampError)


class TransactionalSender:
    """One transactional producer with a fixed id, restartable after failures."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.transactional_id = settings.transactional_id(role)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Create the producer and wait until its id is registered (fencing older ones)."""
        producer = AIOKafkaProducer(
            **self.settings.kafka_kwargs(),
            transactional_id=self.transactional_id,
            max_request_size=self.settings.max_message_bytes,
            max_batch_size=1024 * 1024,
            linger_ms=0,
            request_timeout_ms=self.settings.request_timeout_ms,
            transaction_timeout_ms=self.settings.transaction_timeout_ms,
        )
        await producer.start()
        try:
            # begin_transaction waits for InitProducerId: the fencing point.
            await producer.begin_transaction()
            await producer.abort_transaction()
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

    @staticmethod
    def _batches(producer: AIOKafkaProducer, records: Mapping[str, Sequence[OutRecord]]
                 ) -> Iterator[Awaitable[asyncio.Future[Any]]]:
        """One record batch per partition (cheaper than a send per record): a record goes to the
        partition it names when the topic has it, else (keyed records on a multi-partition topic, as the
        response topic allows) to one chosen by a stable hash of its key (docs/design.md §4.3)."""
        for topic, batch in records.items():
            if not batch:
                continue
            partitions = sorted(producer.client.cluster.partitions_for_topic(topic) or {0})
            by_partition: dict[int, list[OutRecord]] = {}
            for record in batch:
                if record.partition is not None and record.partition in partitions:
                    partition = record.partition
                else:
                    partition = partitions[zlib.crc32(record.key or b"") % len(partitions)]
                by_partition.setdefault(partition, []).append(record)
            for partition, group in by_partition.items():
                builder = producer.create_batch()
                for record in group:
                    if builder.append(key=record.key, value=record.value, timestamp=None,
                                      headers=record.headers) is None:
                        yield producer.send_batch(builder, topic, partition=partition)
                        builder = producer.create_batch()  # an empty batch takes any one record
                        builder.append(key=record.key, value=record.value, timestamp=None, headers=record.headers)
                yield producer.send_batch(builder, topic, partition=partition)

    async def commit(self, records: Mapping[str, Sequence[OutRecord]], *,
                     offsets: Mapping[TopicPartition, int | tuple[int, str]] | None = None,
                     group_id: str = "") -> None:
        """Produce ``records`` (topic → records) and commit ``offsets`` (each an offset, or an offset
        and its metadata) for ``group_id`` atomically."""
        producer = self._producer
        if producer is None:
            raise TransactionFailed("the transactional producer is not running")
        try:
            await self._know_partitions(producer, records)
            await producer.begin_transaction()
            futures = [await future for future in self._batches(producer, records)]
            if futures:
                await asyncio.gather(*futures)
            if offsets:
                await producer.send_offsets_to_transaction(dict(offsets), group_id)
            await producer.commit_transaction()
        except ProducerFenced as exc:
            await self.stop()
            raise Fenced(str(exc)) from exc
        except _REFUSALS as exc:
            await self._abort(producer)
            await self.stop()
            raise RecordRefused(f"{type(exc).__name__}: {exc}") from exc
        except (KafkaError, asyncio.TimeoutError) as exc:
            await self._abort(producer)
            await self.stop()
            raise TransactionFailed(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    async def _know_partitions(producer: AIOKafkaProducer, records: Mapping[str, Sequence[OutRecord]]) -> None:
        """Have the partitions of every topic written to, and refresh them once when a record names one
        not listed: partitions may have been added since, and its reader waits on that one only."""
        for topic, batch in records.items():
            if batch:
                known = await producer.partitions_for(topic)  # waits only for a topic not yet seen
                if any(r.partition is not None and r.partition not in known for r in batch):
                    await producer.client.force_metadata_update()

    async def _abort(self, producer: AIOKafkaProducer) -> None:
        """End a failed transaction now: left open, it pins the last stable offset of every partition
        it touched (read_committed readers stall) until the broker times it out."""
        if producer._txn_manager.state not in _ABORTABLE:  # committing (outcome unknown) or fatal: nothing to abort
            return
        try:
            await asyncio.wait_for(producer.abort_transaction(), self.settings.request_timeout_ms / 1000)
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.warning("could not abort the failed transaction: %s", str(exc) or type(exc).__name__,
                        extra={"fields": {"transactional_id": self.transactional_id}})


class PlainSender:
    """An idempotent producer outside any transaction, for output that needs no atomicity with the
    input offsets: the answers to reads (docs/design.md §6), which a re-consumed read only repeats."""

    # The same record routing as the transactional output.
    _batches = staticmethod(TransactionalSender._batches)
    _know_partitions = staticmethod(TransactionalSender._know_partitions)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(**self.settings.kafka_kwargs(), enable_idempotence=True, acks="all",
                                    max_request_size=self.settings.max_message_bytes, max_batch_size=1024 * 1024,
                                    linger_ms=0, request_timeout_ms=self.settings.request_timeout_ms)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(self, records: Mapping[str, Sequence[OutRecord]]) -> None:
        """Produce ``records`` (topic → records) and wait for the acknowledgements; RecordRefused when
        the broker refuses a record for good (some of the others may have been written), else KafkaError."""
        if self._producer is None:
            raise EventConfigError("the read producer is not running")
        try:
            await self._know_partitions(self._producer, records)
            futures = [await future for future in self._batches(self._producer, records)]
            if futures:
                await asyncio.gather(*futures)
        except _REFUSALS as exc:
            raise RecordRefused(f"{type(exc).__name__}: {exc}") from exc

"""The one module through which the roles reach aiokafka (tests/integration/test_kafka_adapter.py pins it).

Everything the exclusive roles (writer, projector, TrustGraph forwarder and translator) need from the
Kafka client lives here, behind a few narrow names: the group member that holds or waits for the
role's input partition (:class:`GroupMember`), the producers (:func:`transactional_producer`,
:func:`idempotent_producer`) and the steps of a transaction (:func:`fence`, :func:`send`,
:func:`abortable`). The aiokafka details that have no public API (the transaction manager's state,
a forced metadata refresh) are confined to this module.

Example::

    member = GroupMember(settings, "g", TopicPartition("t", 0), on_revoked=step_down)
    await member.start()
    records = await member.fetch(timeout_ms=100, max_records=500)
"""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (CorruptRecordException, InvalidMessageError, InvalidTimestampError, KafkaError,
                             MessageSizeTooLargeError, ProducerFenced, RecordListTooLargeError, RecordTooLargeError)
from aiokafka.producer.transaction_manager import TransactionState
from aiokafka.structs import OffsetAndMetadata

from eventconfig.kafka.reading import committed_consumer, end_offset, read_to_end
from eventconfig.kafka.records import OutRecord
from eventconfig.settings import Settings

__all__ = ["AIOKafkaProducer", "ConsumerRecord", "GroupMember", "KafkaError", "ProducerFenced", "REFUSALS", "TopicPartition",
           "abortable", "fence", "forget_failure", "idempotent_producer", "refresh_metadata", "routes", "send", "transactional_producer"]

# Produce errors that retrying cannot cure: the records themselves are unacceptable to the broker.
REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, CorruptRecordException,
            InvalidMessageError, InvalidTimestampError)

# aiokafka's transaction states from which abort_transaction() is a valid transition.
_ABORTABLE = frozenset({TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR})

# The role's group: a member that misses heartbeats for the session is replaced.
_SESSION_TIMEOUT_MS = 6000
_HEARTBEAT_INTERVAL_MS = 1500
_IDLE_POLL_MS = 200  # how often a member without the role polls (keeps its membership alive)


# --- producers ----------------------------------------------------------------------------------

def transactional_producer(settings: Settings, transactional_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(**settings.kafka_kwargs(), transactional_id=transactional_id,
                            max_request_size=settings.max_message_bytes, max_batch_size=1024 * 1024, linger_ms=0,
                            request_timeout_ms=settings.request_timeout_ms, transaction_timeout_ms=60_000)


def idempotent_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(**settings.kafka_kwargs(), enable_idempotence=True, acks="all",
                            max_request_size=settings.max_message_bytes, max_batch_size=1024 * 1024, linger_ms=0,
                            request_timeout_ms=settings.request_timeout_ms)


async def fence(producer: AIOKafkaProducer) -> None:
    """Register the producer's transactional id (InitProducerId, which ``begin_transaction`` waits for):
    the broker fences every older producer with that id and aborts its open transaction."""
    await producer.begin_transaction()
    await producer.abort_transaction()


def abortable(producer: AIOKafkaProducer) -> bool:
    """Whether the current transaction can still be aborted: not while it commits (outcome unknown) or
    after a fatal error. aiokafka asserts on an invalid abort, so the state is read first (private)."""
    return producer._txn_manager.state in _ABORTABLE


def forget_failure(producer: AIOKafkaProducer) -> None:
    """Mark the error of a failed transaction as seen where aiokafka leaves it unseen (private): the
    transaction's waiter and the drain waiter of each failed record batch. The caller has handled the
    error; unseen, it is logged as a "Future exception was never retrieved" traceback when the
    producer is dropped (issue 22)."""
    accumulator = producer._message_accumulator
    batches = [*itertools.chain.from_iterable(accumulator._batches.values()), *accumulator._pending_batches]
    for waiter in [producer._txn_manager.wait_for_transaction_end(), *(b._drain_waiter for b in batches)]:
        if waiter.done() and not waiter.cancelled():
            waiter.exception()


async def refresh_metadata(producer: AIOKafkaProducer) -> None:
    """Fetch the cluster's metadata now (partitions added since the last refresh)."""
    await producer.client.force_metadata_update()


async def routes(producer: AIOKafkaProducer, records: Mapping[str, Sequence[OutRecord]]) -> dict[str, list[int]]:
    """The partitions of every topic written to, refreshed once when a record names one not listed:
    partitions may have been added since, and its reader waits on that one only."""
    found = {}
    for topic, batch in records.items():
        if batch:
            known = await producer.partitions_for(topic)  # waits only for a topic not yet seen
            if any(r.partition is not None and r.partition not in known for r in batch):
                await refresh_metadata(producer)
                known = await producer.partitions_for(topic)
            found[topic] = sorted(known or {0})
    return found


async def send(producer: AIOKafkaProducer, records: Mapping[str, Sequence[OutRecord]],
               partitions: Mapping[str, list[int]]) -> None:
    """Produce ``records`` (topic -> records; ``partitions`` from :func:`routes`) and wait for the
    acknowledgements, one record batch per partition (cheaper than a send per record). A record goes to
    the partition it names when the topic has it, else (keyed records on a multi-partition topic, as the
    response topic allows) to one chosen by a stable hash of its key (docs/design.md §4.3)."""
    futures = []
    for topic, batch in records.items():
        if not batch:
            continue
        known = partitions[topic]
        by_partition: dict[int, list[OutRecord]] = {}
        for record in batch:
            if record.partition is not None and record.partition in known:
                partition = record.partition
            else:
                partition = known[zlib.crc32(record.key or b"") % len(known)]
            by_partition.setdefault(partition, []).append(record)
        for partition, group in by_partition.items():
            builder = producer.create_batch()
            for record in group:
                if builder.append(key=record.key, value=record.value, timestamp=None, headers=record.headers) is None:
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = producer.create_batch()  # an empty batch takes any one record
                    builder.append(key=record.key, value=record.value, timestamp=None, headers=record.headers)
            futures.append(await producer.send_batch(builder, topic, partition=partition))
    if futures:
        await asyncio.gather(*futures)


# --- the role's group ---------------------------------------------------------------------------

class _Listener(ConsumerRebalanceListener):
    def __init__(self, tp: TopicPartition, on_revoked: Callable[[], Awaitable[None]]) -> None:
        self.tp, self.on_revoked = tp, on_revoked

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self.tp in revoked:
            await self.on_revoked()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pass  # the role's loop sees the assignment


class GroupMember:
    """Membership of a role's consumer group, and reading the role's input partition ``tp``.

    Every process that can play the role is a member; the one assigned ``tp`` should hold the role.
    ``on_revoked`` is awaited (inside the rebalance) when ``tp`` is taken away."""

    def __init__(self, settings: Settings, group_id: str, tp: TopicPartition,
                 on_revoked: Callable[[], Awaitable[None]]) -> None:
        self.settings, self.group_id, self.tp = settings, group_id, tp
        self._on_revoked = on_revoked
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the member has not started"
        return self._consumer

    async def start(self) -> None:
        consumer = committed_consumer(self.settings, group_id=self.group_id, session_timeout_ms=_SESSION_TIMEOUT_MS,
                                      heartbeat_interval_ms=_HEARTBEAT_INTERVAL_MS, max_poll_interval_ms=300_000)
        await consumer.start()
        self._consumer = consumer
        consumer.subscribe([self.tp.topic], listener=_Listener(self.tp, self._on_revoked))

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    def assigned(self) -> bool:
        """Whether the group has assigned this member the role's partition (as of the last rebalance)."""
        return self.tp in self.consumer.assignment()

    async def idle(self) -> None:
        """Poll without reading anything (nothing is ours without the role); keeps the membership alive."""
        self.consumer.pause(*self.consumer.assignment())
        await self.consumer.getmany(timeout_ms=_IDLE_POLL_MS)

    def read_role_partition_only(self) -> None:
        """A multi-partition input (the response topic) is read at the role's partition only."""
        self.consumer.pause(*(self.consumer.assignment() - {self.tp}))
        self.consumer.resume(self.tp)

    async def fetch(self, timeout_ms: int, max_records: int, linger_ms: int = 0) -> list[ConsumerRecord]:
        """The next records of the role's partition (waiting up to ``timeout_ms`` for the first); with
        ``linger_ms``, what else arrives that long after the first joins them (group commit)."""
        fetched = await self.consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=max_records)
        records = fetched.get(self.tp, [])
        deadline = time.monotonic() + linger_ms / 1000
        while records and len(records) < max_records:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            fetched = await self.consumer.getmany(self.tp, timeout_ms=remaining_ms,
                                                  max_records=max_records - len(records))
            records = records + fetched.get(self.tp, [])
        return records

    async def committed(self) -> int | None:
        """The group's committed offset of the role's partition (None: nothing committed)."""
        return await self.consumer.committed(self.tp)

    async def seek(self, offset: int | None) -> None:
        """Read on from ``offset`` (None: the partition's beginning)."""
        if offset is None:
            await self.consumer.seek_to_beginning(self.tp)
        else:
            self.consumer.seek(self.tp, offset)

    async def commit(self, offset: int, metadata: str) -> None:
        """Commit ``offset`` with ``metadata`` for the group, outside any transaction; fails (KafkaError)
        when this member's generation is no longer the group's."""
        await self.consumer.commit({self.tp: OffsetAndMetadata(offset, metadata)})

    async def read(self, start: int, until: int) -> list[ConsumerRecord]:
        """The records of the role's partition from ``start`` up to ``until`` (excluded)."""
        self.consumer.seek(self.tp, start)
        return [record async for batch in read_to_end(self.consumer, self.tp, until=until) for record in batch
                if record.offset < until]

    async def offset_at(self, timestamp_ms: int) -> int | None:
        """The first offset of the role's partition at or after ``timestamp_ms`` (None: none is)."""
        found = (await self.consumer.offsets_for_times({self.tp: timestamp_ms})).get(self.tp)
        return found.offset if found is not None else None

    async def end(self) -> int:
        return await end_offset(self.consumer, self.tp)

    def end_as_fetched(self) -> int:
        """The partition's end as of the last fetch (its last stable offset, read_committed)."""
        return self.consumer.last_stable_offset(self.tp) or self.consumer.highwater(self.tp) or 0


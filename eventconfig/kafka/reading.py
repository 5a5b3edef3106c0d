"""Reading a single-partition topic up to its end, decided by position, never by "last offset + 1".

Transaction markers take offsets but are never delivered, so a log that ends with a commit marker
has an end offset one past the last record a consumer sees. The only sound test for "caught up" is
``position >= end_offset`` (with ``read_committed`` the end offset is the last stable offset).

Example::

    consumer = committed_consumer(settings)
    await consumer.start()
    consumer.assign([tp]); await consumer.seek_to_beginning(tp)
    async for batch in read_to_end(consumer, tp):
        apply(batch)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from eventconfig.settings import Settings


FETCH_WAIT_MS = 100
END_OFFSET_ATTEMPTS = 3


def committed_consumer(settings: Settings, **kwargs: Any) -> AIOKafkaConsumer:
    """A consumer that sees only committed transactional records and never auto-commits."""
    options: dict[str, Any] = dict(
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=max(settings.max_message_bytes, 52428800),
        max_partition_fetch_bytes=settings.max_message_bytes,
        # Kafka answers one request per connection at a time, so an idle long-poll fetch delays any
        # offset lookup behind it (e.g. "caught up?") by up to this long. New data ends it at once.
        fetch_max_wait_ms=FETCH_WAIT_MS,
        request_timeout_ms=settings.request_timeout_ms,  # a fetch from a frozen leader gives up this soon
    )
    if "session_timeout_ms" in kwargs:
        # aiokafka sends JoinGroup with the request timeout, and the coordinator may hold it for a whole
        # session (the rebalance timeout) waiting for the other members: a member's must be longer.
        options["request_timeout_ms"] = max(settings.request_timeout_ms, kwargs["session_timeout_ms"] + 1000)
    options.update(kwargs)
    return AIOKafkaConsumer(**{**settings.kafka_kwargs(), **options})


async def end_offset(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """The end offset of ``tp``. An offset request to a leader that froze uses up the whole request
    timeout; asked again (the client refreshes its metadata every ``metadata_max_age_ms``), the
    moved leader answers, so a frozen broker costs a retry here, not the caller's start."""
    for _ in range(END_OFFSET_ATTEMPTS - 1):
        try:
            return int((await consumer.end_offsets([tp]))[tp])
        except KafkaTimeoutError:
            continue
    return int((await consumer.end_offsets([tp]))[tp])  # the last attempt's error is the caller's


async def read_to_end(
    consumer: AIOKafkaConsumer, tp: TopicPartition, *, max_records: int = 10_000, poll_ms: int = 200,
    until: int | None = None,
) -> AsyncIterator[list[ConsumerRecord]]:
    """Yield batches of records of ``tp`` until the position reaches ``until`` (default: the end
    offset taken at the start); the last batch may reach past ``until``."""
    target = await end_offset(consumer, tp) if until is None else until
    while await consumer.position(tp) < target:
        batches = await consumer.getmany(tp, timeout_ms=poll_ms, max_records=max_records)
        records = batches.get(tp, [])
        if records:
            yield records


async def tail_records(settings: Settings, tp: TopicPartition, wanted: Callable[[ConsumerRecord], bool],
                       first_window: int = 16) -> list[ConsumerRecord]:
    """:func:`tail_of` with a consumer of its own."""
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        return await tail_of(consumer, tp, wanted, first_window)
    finally:
        await consumer.stop()


async def tail_of(consumer: AIOKafkaConsumer, tp: TopicPartition, wanted: Callable[[ConsumerRecord], bool],
                  first_window: int = 16) -> list[ConsumerRecord]:
    """The committed records of a window before the end of ``tp``, widened (x4) until one of them is
    ``wanted`` or it reaches the beginning. Transaction markers and aborted records take offsets
    but are never delivered, so a fixed window could hold none."""
    consumer.assign([tp])
    beginning = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    window = first_window
    while True:
        start = max(beginning, end - window)
        consumer.seek(tp, start)
        records = [r async for batch in read_to_end(consumer, tp) for r in batch]
        if any(map(wanted, records)) or start == beginning:
            return records
        window *= 4


async def read_whole(settings: Settings, topic: str, partition: int = 0) -> list[ConsumerRecord]:
    """Every committed record of one partition (the only one of most topics), from its start to its
    current end (audits, tests)."""
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        return [r async for batch in read_to_end(consumer, tp) for r in batch]
    finally:
        await consumer.stop()

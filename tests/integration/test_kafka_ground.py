"""The ground the service stands on: what this Kafka version and aiokafka guarantee together.

If one of these fails, the writer's exactly-once design fails with it, so they run first and alone.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, ProducerFenced

from eventconfig.kafka.reading import end_offset, read_to_end

pytestmark = pytest.mark.integration


async def _create(bootstrap: str, name: str, **configs: str) -> TopicPartition:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
        assert [code for _, code, _ in response.topic_errors] == [0], response
    finally:
        await admin.close()
    return TopicPartition(name, 0)


async def _read_all(bootstrap: str, tp: TopicPartition) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        return [(r.key, r.value) async for batch in read_to_end(consumer, tp) for r in batch]
    finally:
        await consumer.stop()


async def test_read_committed_sees_committed_records_and_never_aborted_ones(kafka_bootstrap, unique):
    tp = await _create(kafka_bootstrap, f"tx-{unique}")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{unique}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(tp.topic, b"one")
        await producer.begin_transaction()
        await producer.send_and_wait(tp.topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(tp.topic, b"two")
    finally:
        await producer.stop()

    assert [value for _, value in await _read_all(kafka_bootstrap, tp)] == [b"one", b"two"]


async def test_read_to_end_stops_at_a_log_ending_in_a_transaction_marker(kafka_bootstrap, unique):
    tp = await _create(kafka_bootstrap, f"end-{unique}")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"end-{unique}")
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(3):
                await producer.send_and_wait(tp.topic, str(i).encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = await end_offset(consumer, tp)
        assert end == 4, "three records and one commit marker"
        seen = [r async for batch in read_to_end(consumer, tp) for r in batch]
        assert [r.value for r in seen] == [b"0", b"1", b"2"]
        assert seen[-1].offset + 1 < end <= await consumer.position(tp)
    finally:
        await consumer.stop()


async def test_offsets_sent_to_a_transaction_commit_and_abort_with_its_records(kafka_bootstrap, unique):
    source = await _create(kafka_bootstrap, f"src-{unique}")
    sink = await _create(kafka_bootstrap, f"sink-{unique}")
    group = f"group-{unique}"
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await plain.start()
    for i in range(4):
        await plain.send_and_wait(source.topic, str(i).encode())
    await plain.stop()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"eos-{unique}")
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([source])
        async with producer.transaction():
            await producer.send_and_wait(sink.topic, b"copied-0-1")
            await producer.send_offsets_to_transaction({source: 2}, group)
        await producer.begin_transaction()
        await producer.send_and_wait(sink.topic, b"copied-2-3")
        await producer.send_offsets_to_transaction({source: 4}, group)
        await producer.abort_transaction()
        assert await consumer.committed(source) == 2, "the aborted transaction's offsets are not committed"
    finally:
        await consumer.stop()
        await producer.stop()
    assert [v for _, v in await _read_all(kafka_bootstrap, sink)] == [b"copied-0-1"]


async def test_a_second_producer_with_the_same_transactional_id_fences_the_first(kafka_bootstrap, unique):
    tp = await _create(kafka_bootstrap, f"fence-{unique}")
    first = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"fence-{unique}")
    second = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"fence-{unique}")
    await first.start()
    try:
        await first.begin_transaction()
        await first.send_and_wait(tp.topic, b"zombie")
        await second.start()  # InitProducerId bumps the epoch and aborts the open transaction
        with pytest.raises((ProducerFenced, KafkaError)):
            await first.commit_transaction()
        async with second.transaction():
            await second.send_and_wait(tp.topic, b"successor")
    finally:
        await first.stop()
        await second.stop()
    assert [v for _, v in await _read_all(kafka_bootstrap, tp)] == [b"successor"]


async def test_compaction_keeps_only_the_latest_value_per_key_and_the_tombstones(kafka_bootstrap, unique):
    tp = await _create(kafka_bootstrap, f"compact-{unique}", **{
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "600000",  # tombstones outlive the test
    })
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"b", None), (b"a", b"3")]:
            await producer.send_and_wait(tp.topic, value, key=key)
        deadline = time.monotonic() + 60
        while True:
            await asyncio.sleep(0.2)
            # Appending after segment.ms rolls the active segment, which only then becomes cleanable.
            await producer.send_and_wait(tp.topic, b"x", key=b"roll")
            records = [(k, v) for k, v in await _read_all(kafka_bootstrap, tp) if k != b"roll"]
            if len(records) <= 3 or time.monotonic() > deadline:
                break
    finally:
        await producer.stop()
    assert sorted(records, key=lambda kv: kv[0]) == [(b"a", b"3"), (b"b", None), (b"c", b"1")]

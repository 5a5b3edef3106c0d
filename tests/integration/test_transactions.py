"""TransactionalSender and PlainSender against the broker: what a failed commit or a refused record leaves behind."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from eventconfig.kafka.topics import admin_client
from eventconfig.kafka.reading import read_whole
from eventconfig.kafka.transactions import PlainSender, RecordRefused, TransactionalSender, TransactionFailed
from eventconfig.logrecords import OutRecord

pytestmark = pytest.mark.integration


async def test_a_failed_commit_aborts_its_transaction_so_read_committed_readers_do_not_stall(settings):
    touched, refusing = f"{settings.topic_prefix}.touched", f"{settings.topic_prefix}.refusing"
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(touched, 1, 1),
                                   NewTopic(refusing, 1, 1, topic_configs={"max.message.bytes": "1024"})])
    sender = TransactionalSender(settings, "probe")
    await sender.start()
    try:
        with pytest.raises(TransactionFailed):  # the broker refuses the second record after the first is in
            await sender.commit({touched: [OutRecord(b"k", b"in the failed transaction", [])],
                                 refusing: [OutRecord(b"k", b"x" * 4096, [])]})
    finally:
        await sender.stop()

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(touched, b"committed later")
    finally:
        await producer.stop()
    # An open transaction would hide "committed later" from read_committed readers until the broker
    # times it out (transaction_timeout_ms = 60 s); aborted, it is visible at once.
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(touched, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen: list[bytes | None] = []
        async with asyncio.timeout(15):
            while b"committed later" not in seen:
                batches = await consumer.getmany(tp, timeout_ms=200)
                seen.extend(r.value for r in batches.get(tp, []))
    except TimeoutError:
        pytest.fail(f"a record committed after the failed transaction stayed invisible for 15 s (saw {seen})")
    finally:
        await consumer.stop()
    assert seen == [b"committed later"], "the failed transaction's record was aborted"


async def test_a_plain_sender_whose_record_the_broker_refused_still_sends_to_that_partition(settings):
    """aiokafka's idempotent producer keeps the sequence numbers of a refused batch: the broker would
    refuse every later batch to that partition as out of order unless the producer is replaced."""
    refusing = f"{settings.topic_prefix}.refusing"
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(refusing, 1, 1, topic_configs={"max.message.bytes": "1024"})])
    sender = PlainSender(settings)
    await sender.start()
    try:
        await sender.send({refusing: [OutRecord(b"k", b"before", [])]})
        with pytest.raises(RecordRefused):
            await sender.send({refusing: [OutRecord(b"k", b"x" * 4096, [])]})
        with pytest.raises(RecordRefused):  # refused again: replaced again
            await sender.send({refusing: [OutRecord(b"k", b"x" * 4096, [])]})
        await asyncio.wait_for(sender.send({refusing: [OutRecord(b"k", b"after", [])]}), 30)
    finally:
        await sender.stop()
    assert [r.value for r in await read_whole(settings, refusing)] == [b"before", b"after"]

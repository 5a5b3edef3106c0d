"""TransactionalSender against the broker: what a failed commit leaves behind."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from eventconfig.kafka.topics import admin_client
from eventconfig.kafka.transactions import TransactionalSender, TransactionFailed
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

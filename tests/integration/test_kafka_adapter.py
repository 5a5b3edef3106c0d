"""The aiokafka behaviour the roles rely on, pinned through eventconfig.kafka.adapter on the real broker.

The roles reach aiokafka only through that module; if an aiokafka upgrade changes one of these
behaviours (or the private parts the adapter reads), a test here fails before the roles misbehave.
"""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiokafka.admin import NewPartitions, NewTopic

from eventconfig.kafka import adapter
from eventconfig.kafka.adapter import GroupMember, TopicPartition
from eventconfig.kafka.records import OutRecord
from eventconfig.kafka.topics import admin_client
from eventconfig.kafka.transactions import Fenced, TransactionalSender
from tests.support import wait_until

pytestmark = pytest.mark.integration


async def _topic(settings, name: str, partitions: int = 1) -> str:
    topic = f"{settings.topic_prefix}.{name}"
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    return topic


async def test_a_started_sender_fences_the_previous_one_whose_next_commit_fails_as_fenced(settings, caplog):
    """... and the fenced one leaves no "Future exception was never retrieved" behind (adapter.forget_failure
    reads aiokafka's private waiters)."""
    topic = await _topic(settings, "fenced")
    first, second = TransactionalSender(settings, "probe"), TransactionalSender(settings, "probe")
    await first.start()
    try:
        await first.commit({topic: [OutRecord(b"k", b"first", [])]})
        await second.start()  # adapter.fence: InitProducerId bumps the epoch
        with pytest.raises(Fenced):
            await first.commit({topic: [OutRecord(b"k", b"zombie", [])]})
        assert not first.running, "a fenced sender stops its producer"
        await second.commit({topic: [OutRecord(b"k", b"second", [])]})
    finally:
        await first.stop()
        await second.stop()
    gc.collect()  # an unseen future exception is logged when the future is collected
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_the_transaction_state_says_when_an_abort_is_possible(settings):
    """adapter.abortable reads aiokafka's private transaction state: abortable inside a transaction,
    not between transactions."""
    topic = await _topic(settings, "abortable")
    producer = adapter.transactional_producer(settings, settings.transactional_id("abortable"))
    await producer.start()
    try:
        await adapter.fence(producer)
        assert not adapter.abortable(producer), "between transactions there is nothing to abort"
        await producer.begin_transaction()
        assert adapter.abortable(producer)
        await adapter.send(producer, {topic: [OutRecord(b"k", b"v", [])]},
                           await adapter.routes(producer, {topic: [OutRecord(b"k", b"v", [])]}))
        assert adapter.abortable(producer)
        await producer.abort_transaction()
        assert not adapter.abortable(producer)
    finally:
        await producer.stop()


async def test_a_record_for_a_partition_added_after_the_producer_started_reaches_it(settings):
    """adapter.routes refreshes the metadata (aiokafka private) when a record names an unknown partition."""
    topic = await _topic(settings, "grown", partitions=1)
    producer = adapter.idempotent_producer(settings)
    await producer.start()
    try:
        assert await adapter.routes(producer, {topic: [OutRecord(b"k", b"v", [])]}) == {topic: [0]}
        async with admin_client(settings) as admin:
            await admin.create_partitions({topic: NewPartitions(total_count=3)})
        record = OutRecord(b"k", b"to partition 2", [], partition=2)
        routes: dict[str, list[int]] = {}

        async def partition_two_known() -> bool:
            routes.update(await adapter.routes(producer, {topic: [record]}))
            return 2 in routes[topic]
        await wait_until(partition_two_known, 30, "the producer never learned of the new partitions")
        await adapter.send(producer, {topic: [record]}, routes)
    finally:
        await producer.stop()


async def test_the_member_that_holds_the_role_keeps_its_partition_when_another_joins_and_leaves(settings, unique):
    """The group's assignor (adapter._HolderKeeps, through aiokafka's assignor interface) keeps the role's
    partition with the member that says it holds the role; aiokafka's eager rebalance takes it away and
    gives it back, which the member does not report as lost."""
    topic = await _topic(settings, "group")
    tp = TopicPartition(topic, 0)
    lost: list[str] = []
    holding: set[str] = set()

    def member(name: str) -> GroupMember:
        async def on_lost() -> None:
            lost.append(name)
        return GroupMember(settings, f"g-{unique}", tp, on_lost=on_lost,
                           held_since=lambda: 1 if name in holding else None, reading=lambda: False)

    members = {"a": member("a"), "b": member("b")}
    polls: dict[str, asyncio.Task[None]] = {}

    async def poll(m: GroupMember) -> None:
        while True:
            await m.idle()
    try:
        await members["a"].start()
        polls["a"] = asyncio.create_task(poll(members["a"]))
        await wait_until(members["a"].assigned, 30, "the only member was not assigned the partition")
        holding.add("a")
        rebalances = members["a"].rebalances
        await members["b"].start()
        polls["b"] = asyncio.create_task(poll(members["b"]))
        await wait_until(lambda: members["b"].rebalances >= 1 and members["a"].rebalances > rebalances, 30,
                         "the second member's join did not rebalance the group")
        assert members["a"].assigned() and not members["b"].assigned(), "the holder keeps the partition"
        assert lost == ["b"], "the holder was not told it lost the partition; the joining member was"
        polls.pop("a").cancel()
        await members["a"].stop()
        await wait_until(members["b"].assigned, 30, "the remaining member did not get the partition")
    finally:
        for task in polls.values():
            task.cancel()
        await asyncio.gather(*polls.values(), return_exceptions=True)
        for m in members.values():
            await m.stop()

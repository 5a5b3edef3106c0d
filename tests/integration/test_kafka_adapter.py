"""The aiokafka behaviour the roles rely on, pinned through eventconfig.kafka.adapter on the real broker.

The roles reach aiokafka only through that module; if an aiokafka upgrade changes one of these
behaviours (or the private parts the adapter reads), a test here fails before the roles misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.admin import NewPartitions, NewTopic
from aiokafka.errors import KafkaConnectionError

from eventconfig.kafka import adapter
from eventconfig.kafka.adapter import GroupMember, TopicPartition
from eventconfig.kafka.reading import committed_consumer
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


@contextlib.asynccontextmanager
async def _reading_from_the_end(settings, tps: list[TopicPartition], tune: Callable[[Any], None],
                                **consumer_options: Any) -> AsyncIterator[tuple[Any, Any]]:
    """A started consumer (tuned by ``tune`` before its assignment) positioned at the end of ``tps``,
    and a producer to write to them."""
    consumer = committed_consumer(settings, **consumer_options)
    producer = adapter.idempotent_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        tune(consumer)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        yield consumer, producer
    finally:
        await producer.stop()
        await consumer.stop()


async def test_a_consumer_whose_caller_takes_records_late_still_fetches_that_partition_at_once(settings):
    """adapter.fetch_partitions_together (aiokafka private): records of partition 0 taken late must not
    leave partition 0 out of a long poll for partition 1, or its next record waits for the poll to end."""
    topic = await _topic(settings, "together", partitions=2)
    first = TopicPartition(topic, 0)
    long_poll_ms = 30_000
    async with _reading_from_the_end(settings, [first, TopicPartition(topic, 1)], adapter.fetch_partitions_together,
                                     fetch_max_wait_ms=long_poll_ms,
                                     request_timeout_ms=long_poll_ms + 10_000) as (consumer, producer):
        await producer.send_and_wait(topic, b"one", partition=0)
        await asyncio.sleep(0.5)  # the scenario, not a synchronisation: a caller late by more than 100 ms
        taken = await consumer.getmany(first, timeout_ms=10_000)
        assert [r.value for r in taken[first]] == [b"one"]
        await producer.send_and_wait(topic, b"two", partition=0)
        taken = await consumer.getmany(first, timeout_ms=10_000)  # without the call: after the 30 s poll
        assert [r.value for r in taken.get(first, [])] == [b"two"], "the record waited for a long poll"


async def test_a_consumer_whose_fetch_loop_wakes_as_a_fetch_ends_sends_the_next_fetch_at_once(settings):
    """adapter.fetch_again_at_once (aiokafka privates): when the fetch loop wakes in the turn a fetch
    ends (its timer, or records taken), it must still send the next fetch, not sleep until its timer
    (60 s here) fires again. The wake in that turn is forced through the client's send."""
    topic = await _topic(settings, "again")
    tp = TopicPartition(topic, 0)
    async with _reading_from_the_end(settings, [tp], adapter.fetch_again_at_once, fetch_max_wait_ms=200,
                                     consumer_timeout_ms=60_000) as (consumer, producer):
        fetcher, send = consumer._fetcher, consumer._client.send
        woken: list[bool] = []

        async def send_then_wake_the_loop(node_id, request, **kwargs):
            response = await send(node_id, request, **kwargs)
            if type(request).__name__.startswith("FetchRequest") and not woken:
                woken.append(True)
                fetcher._notify(fetcher._wait_consume_future)
                await asyncio.sleep(0)  # the loop's wake-up is queued before this fetch's task ends
            return response
        consumer._client.send = send_then_wake_the_loop
        await wait_until(lambda: bool(woken), 10, "no fetch ended")
        await producer.send_and_wait(topic, b"one", partition=0)
        taken = await consumer.getmany(tp, timeout_ms=10_000)  # without the call: after the 60 s timer
        assert [r.value for r in taken.get(tp, [])] == [b"one"], "no fetch was sent after the woken turn"


async def test_a_consumer_stopped_while_it_waits_to_retry_a_failed_fetch_stops_quietly(settings):
    """adapter.fetch_again_at_once: stopping cancels the fetch and awaits it; cancelled in aiokafka's
    pause after a failed fetch (10 s here), the fetch must end quietly, not raise out of stop()."""
    topic = await _topic(settings, "quietly")
    tp = TopicPartition(topic, 0)
    async with _reading_from_the_end(settings, [tp], adapter.fetch_again_at_once,
                                     retry_backoff_ms=10_000) as (consumer, _):
        send = consumer._client.send
        failed: list[bool] = []

        async def fail_one_fetch(node_id, request, **kwargs):
            if type(request).__name__.startswith("FetchRequest") and not failed:
                failed.append(True)
                raise KafkaConnectionError("a fetch that failed")
            return await send(node_id, request, **kwargs)
        consumer._client.send = fail_one_fetch
        await wait_until(lambda: bool(failed), 10, "no fetch was sent")
        await asyncio.wait_for(consumer.stop(), 5)  # without the call: CancelledError


async def test_new_topics_are_seen_by_every_broker_once_each_lists_them(settings):
    """adapter.topics_seen_by_every_broker (the admin's private client) asks every broker, not one."""
    name = f"{settings.topic_prefix}.seen"
    async with admin_client(settings) as admin:
        assert not await adapter.topics_seen_by_every_broker(admin, [name]), "a topic not created yet is seen"
        await admin.create_topics([NewTopic(name, 2, 1)])
        await wait_until(lambda: adapter.topics_seen_by_every_broker(admin, [name]), 30,
                         "the new topic never reached every broker")


def _member(settings, group: str, tp: TopicPartition, name: str, lost: list[str], holding: set[str]) -> GroupMember:
    """A member that reports a loss into ``lost`` and says it holds the role while ``name`` is in ``holding``."""
    async def on_lost() -> None:
        lost.append(name)
    return GroupMember(settings, group, tp, on_lost=on_lost, held_since=lambda: 1 if name in holding else None,
                       reading=lambda: False)


def _polling(member: GroupMember) -> asyncio.Task[None]:
    """Keep ``member`` polling (its membership lives on its polls) until the task is cancelled."""
    async def poll() -> None:
        while True:
            await member.idle()
    return asyncio.create_task(poll())


async def _stop(members: list[GroupMember], polls: list[asyncio.Task[None]]) -> None:
    for task in polls:
        task.cancel()
    await asyncio.gather(*polls, return_exceptions=True)
    for m in members:
        await m.stop()


async def test_the_member_that_holds_the_role_keeps_its_partition_when_another_joins_and_leaves(settings, unique):
    """The group's assignor (adapter._HolderKeeps, through aiokafka's assignor interface) keeps the role's
    partition with the member that says it holds the role; aiokafka's eager rebalance takes it away and
    gives it back, which the member does not report as lost."""
    tp = TopicPartition(await _topic(settings, "group"), 0)
    lost: list[str] = []
    holding: set[str] = set()
    a, b = (_member(settings, f"g-{unique}", tp, name, lost, holding) for name in "ab")
    polls: list[asyncio.Task[None]] = []
    try:
        await a.start()
        polls.append(_polling(a))
        await wait_until(a.assigned, 30, "the only member was not assigned the partition")
        holding.add("a")
        rebalances = a.rebalances
        await b.start()
        polls.append(_polling(b))
        await wait_until(lambda: b.rebalances >= 1 and a.rebalances > rebalances, 30,
                         "the second member's join did not rebalance the group")
        assert a.assigned() and not b.assigned(), "the holder keeps the partition"
        assert lost == ["b"], "the holder was not told it lost the partition; the joining member was"
        polls.pop(0).cancel()
        await a.stop()
        await wait_until(b.assigned, 30, "the remaining member did not get the partition")
    finally:
        await _stop([a, b], polls)


async def test_two_members_that_start_together_settle_within_one_generation_per_join(settings, unique):
    """Two processes starting at once (a deployment's first start, the chaos run) settle with one member
    assigned after at most one generation per join. Offered a second assignor, Kafka 4.1 rebalanced once
    more after every join (generation 4 here) and sometimes without end, so no member ever held the role."""
    tp = TopicPartition(await _topic(settings, "together"), 0)
    lost: list[str] = []
    members = [_member(settings, f"g-{unique}", tp, name, lost, set()) for name in "ab"]
    polls: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(*(m.start() for m in members))
        polls.extend(_polling(m) for m in members)
        await wait_until(lambda: all(m.rebalances and m.settled_since(m.rebalances) for m in members)
                         and [m.assigned() for m in members].count(True) == 1, 30,
                         "two members starting together never settled with one of them assigned")
        assert [m.generation for m in members] in ([1, 1], [2, 2]), "the group rebalanced more often than members joined"
    finally:
        await _stop(members, polls)

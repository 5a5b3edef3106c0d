"""A client hub follows a partition leader that moved away from a frozen broker (issue 22).

A frozen broker (SIGSTOP, a long GC pause, a hung host) keeps its connections open and answers
nothing. A hub refreshes its Kafka metadata unasked only every ``client_metadata_max_age_ms`` (5
minutes), so without help its consumer would keep waiting on the frozen leader of its reply
partition for a whole request timeout (and, when the refresh that follows picks the frozen broker,
another). A request unanswered for ``client_stalled_request_ms`` refreshes the metadata from every
broker at once, and the answer arrives from the new leader; a plain consumer (a view's, a group's)
does so while a fetch from the frozen leader stalls. The second test starts a 3-node cluster of its
own, as the chaos test does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from eventconfig.client.hub import ConnectionHub, acquire, release
from eventconfig.codec import default_codec
from eventconfig.kafka.adapter import refresh_when_a_fetch_stalls
from eventconfig.kafka.reading import committed_consumer
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.localbroker import LocalBroker
from eventconfig.model import ID_HEADER
from eventconfig.settings import Settings
from tests.support import wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


def stall_refreshes(outcome: str) -> float:
    return REGISTRY.get_sample_value("eventconfig_client_stall_refreshes_total", {"outcome": outcome}) or 0.0


async def test_a_request_left_unanswered_refreshes_the_metadata_and_then_backs_off(settings):
    settings = dataclasses.replace(settings, client_stalled_request_ms=100)
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    hub = await acquire(settings, share=False)
    try:
        before = stall_refreshes("ok")
        hub.expect("nobody-answers")  # no service runs: it stays pending
        await wait_until(lambda: stall_refreshes("ok") >= before + 1, 30, "a stalled request refreshed nothing")
        started = asyncio.get_running_loop().time()
        await wait_until(lambda: stall_refreshes("ok") >= before + 3, 30,
                         "a request pending for several periods refreshed the metadata again")
        assert asyncio.get_running_loop().time() - started >= 0.3, "the refreshes came every period, not every two"
        hub.forget("nobody-answers")
    finally:
        await release(hub)


async def _leader(admin: AIOKafkaAdminClient, topic: str, partition: int) -> int:
    [described] = await admin.describe_topics([topic])
    return int(next(p["leader"] for p in described["partitions"] if p["partition"] == partition))


async def _answer(bootstrap: str, topic: str, partition: int, request_id: str) -> None:
    """Write an answer to ``request_id`` as the service would (retried until the moved leader takes it)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=5000)
    await producer.start()
    try:
        value = codec.encode("ConfigResponse", {"version": 7})
        await producer.send_and_wait(topic, value, partition=partition, headers=[(ID_HEADER, request_id.encode())])
    finally:
        await producer.stop()


@pytest.mark.timeout(600)
async def _reading_at_end(settings: Settings, tp: TopicPartition) -> AIOKafkaConsumer:
    """A consumer of ``tp`` from its end that refreshes its metadata from every broker while a fetch
    stalls (kafka.adapter.refresh_when_a_fetch_stalls). Its own metadata timer (5 minutes) and request
    timeout (25 s) are long: without the refresh it would fetch from the frozen leader for 25 s."""
    consumer = committed_consumer(settings, request_timeout_ms=25_000, metadata_max_age_ms=300_000)
    await consumer.start()
    refresh_when_a_fetch_stalls(consumer, 1.0, 4.0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    return consumer


async def test_a_hub_gets_its_answer_from_the_new_leader_while_the_old_one_is_frozen(tmp_path: Path):
    broker = LocalBroker(tmp_path / "cluster", nodes=3)
    bootstrap = await asyncio.to_thread(broker.start, 240.0)
    frozen: int | None = None
    hub: ConnectionHub | None = None
    reader: AIOKafkaConsumer | None = None
    try:
        # A request timeout far above the deadline below: without the stall refresh the hub's fetch
        # from the frozen leader would end only after it (the long poll plus this), 30 s or more.
        settings = Settings.load({"bootstrap_servers": bootstrap, "topic_prefix": f"t{uuid.uuid4().hex[:10]}",
                                  "data_dir": tmp_path / "data", "response_partitions": 3, "read_partitions": 1,
                                  "request_timeout_ms": 25_000, "client_stalled_request_ms": 500}, env={})
        async with admin_client(settings) as admin:
            await create_topics(admin, settings)
            response = settings.topics.response
            hub = await acquire(settings, reply_partition=0, share=False)
            reader = await _reading_at_end(settings, TopicPartition(response, 0))
            frozen = await _leader(admin, response, 0)
            await asyncio.to_thread(broker.pause, frozen)
            answer = hub.expect("frozen-leader")
            state = broker.status()
            assert state is not None, "the cluster is not running"
            others = ",".join(n.bootstrap for n in state.nodes if n.id != frozen)

            async def moved() -> bool:
                try:
                    return await asyncio.wait_for(_leader(admin, response, 0), 2) not in (frozen, -1)
                except Exception:  # noqa: BLE001 - the request went to the frozen node: ask again
                    return False

            await wait_until(moved, 60, "Kafka moved the reply partition's leadership off the frozen broker")
            await _answer(others, response, 0, "frozen-leader")
            # Well below the 30 s and more the hub would wait on the frozen leader without the refresh.
            assert (await asyncio.wait_for(answer, 12))["version"] == 7
            # A plain consumer (a view's, a group's) refreshes while a fetch from the frozen leader stalls.
            taken = await reader.getmany(TopicPartition(response, 0), timeout_ms=12_000)
            assert taken.get(TopicPartition(response, 0)), "the consumer kept fetching from the frozen leader"
    finally:
        if frozen is not None:
            await asyncio.to_thread(broker.resume, frozen)
        if hub is not None:
            await release(hub)
        if reader is not None:
            await reader.stop()
        await asyncio.to_thread(broker.stop)

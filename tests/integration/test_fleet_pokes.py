"""Pokes that carry their items (docs/design.md §7) against the real service: a change reaches many
subscribers with no request to the writer; a subscriber that misses a poke, whose change is over the
item cap, or that lives through a writer fail-over still converges; a subscriber uses one Kafka
consumer, and the subscribers of a process share it."""

from __future__ import annotations

import asyncio
import dataclasses
import signal

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from eventconfig.client import ConfigClient, ConfigSubscriber
from eventconfig.client.hub import connection_stats
from eventconfig.codec import default_codec
from eventconfig.kafka.reading import committed_consumer, read_whole
from eventconfig.logrecords import decode_record
from eventconfig.push.projector import Projector
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from tests.integration.test_subscribers import Recorder, eventually
from tests.support import running_service, start_services, wait_serving, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


def fetches(reason: str) -> float:
    return REGISTRY.get_sample_value("eventconfig_subscriber_fetches_total", {"reason": reason}) or 0.0


def kafka_clients(kind: str) -> float:
    return REGISTRY.get_sample_value("eventconfig_client_kafka_clients", {"kind": kind}) or 0.0


async def requests_sent(settings: Settings) -> int:
    """Records on the request topic: every request anyone sent the writer."""
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.request, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def prompts(recorder: Recorder, workspace: str = "w") -> dict[str, str] | None:
    return recorder.state.get(workspace, {}).get("prompt")


async def test_a_small_change_reaches_every_subscriber_without_a_request_and_a_process_shares_one_consumer(
        service, settings):
    consumers, producers = kafka_clients("consumer"), kafka_clients("producer")
    async with ConfigClient(settings) as client:
        await client.put("w", "prompt", "a", "0")
        shared = [ConfigSubscriber(settings) for _ in range(10)]
        alone = [ConfigSubscriber(settings, share_connections=False) for _ in range(2)]
        recorders = [Recorder() for _ in shared + alone]
        for subscriber, recorder in zip(shared + alone, recorders):
            subscriber.on_change(recorder, types=["prompt"])
        await asyncio.gather(*(s.start(timeout=60) for s in shared + alone))
        try:
            assert kafka_clients("consumer") - consumers == 3, "the client and 10 subscribers share one consumer"
            assert kafka_clients("producer") - producers == 3, "and one producer; each one alone has its own"
            [hub] = [h for h in connection_stats() if h.users == 11]
            assert (hub.consumers, hub.producers, hub.reads_pokes) == (1, 1, True)
            before = (await requests_sent(settings), fetches("no-items"), fetches("not-held"), fetches("missed-poke"))
            await client.put("w", "prompt", "a", "1")
            await client.put_many("v", [("prompt", "x", "2"), ("other", "y", "3")])
            await client.delete("w", "prompt", "a")
            await eventually(lambda: all(prompts(r) == {} and prompts(r, "v") == {"x": "2"} for r in recorders))
            after = (await requests_sent(settings), fetches("no-items"), fetches("not-held"), fetches("missed-poke"))
            assert after == (before[0] + 3, *before[1:]), "the writer got the three writes and nothing else"
            assert [call[1:] for call in recorders[0].calls[-3:]] == [
                ({"prompt": {"a": "1"}}, 2), ({"prompt": {"x": "2"}}, 3), ({"prompt": {}}, 4)], "whole maps, in order"
        finally:
            await asyncio.gather(*(s.stop() for s in shared + alone))
    assert connection_stats() == [] and (kafka_clients("consumer"), kafka_clients("producer")) == (consumers, producers)


async def test_a_change_over_the_item_cap_is_fetched_and_the_next_small_one_applied(settings):
    capped = dataclasses.replace(settings, poke_items_max_bytes=64)
    async with running_service(capped), ConfigClient(capped) as client:
        recorder = Recorder()
        subscriber = ConfigSubscriber(capped)
        subscriber.on_change(recorder, types=["prompt"])
        await subscriber.start(timeout=60)
        try:
            before = fetches("no-items")
            await client.put("w", "prompt", "big", "x" * 200)
            version = await client.put("w", "prompt", "small", "y")
            await eventually(lambda: subscriber.version >= version)
            assert prompts(recorder) == {"big": "x" * 200, "small": "y"}
            assert fetches("no-items") == before + 1, "only the change over the cap was fetched"
        finally:
            await subscriber.stop()


async def test_a_subscriber_that_misses_a_poke_fetches_what_it_holds_and_converges(settings, topics):
    """The service runs without its projector; the test projects the log with the real projection and
    withholds one poke, as a subscriber that lost it to retention would see."""
    service = ConfigService(dataclasses.replace(settings, writer_pokes=False), projector=False)  # no pokes
    await service.start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await service.writer.wait_active(60)
        async with ConfigClient(settings) as client:
            await client.put("w", "prompt", "a", "1")
            recorder = Recorder()
            subscriber = ConfigSubscriber(settings)
            subscriber.on_change(recorder, types=["prompt"])
            await subscriber.start(timeout=60)
            try:
                await client.put("w", "prompt", "a", "2")  # its poke is lost
                await client.put("w", "prompt", "b", "3")
                projector = Projector()
                pokes = [p for r in await read_whole(settings, settings.topics.log)
                         if (p := projector.add(decode_record(r.key, r.value, r.headers))) is not None]
                assert [(p["previous_version"], p["version"]) for p in pokes] == [(0, 1), (1, 2), (2, 3)]
                before = fetches("missed-poke")
                for poke in (pokes[0], pokes[2]):
                    await producer.send_and_wait(settings.topics.notify, codec.encode("ConfigPush", poke))
                await eventually(lambda: subscriber.version >= 3)
                assert prompts(recorder) == {"a": "2", "b": "3"}, "the missed change arrived with the refetch"
                assert fetches("missed-poke") == before + 1
            finally:
                await subscriber.stop()
    finally:
        await producer.stop()
        await service.stop()


async def test_subscribers_converge_across_a_writer_fail_over(settings, topics, wire, processes, tmp_path):
    logs = start_services(settings, tmp_path)
    processes.extend(logs)
    await wait_serving(wire)
    async with ConfigClient(settings, timeout=60) as client:
        recorders = [Recorder() for _ in range(3)]
        subscribers = [ConfigSubscriber(settings) for _ in recorders]
        for subscriber, recorder in zip(subscribers, recorders):
            subscriber.on_change(recorder, types=["prompt"])
        await asyncio.gather(*(s.start(timeout=60) for s in subscribers))
        try:
            missed = fetches("missed-poke")
            for i in range(10):
                await client.put("w", "prompt", f"k{i % 4}", f"before {i}")
            await wait_until(lambda: any(" active role=writer" in log.read_text() for log in logs.values()), 30,
                             "no process logged that it holds the writer role")
            active = next(p for p, log in logs.items() if " active role=writer" in log.read_text())
            active.send_signal(signal.SIGKILL)
            await wait_serving(wire)
            for i in range(10):
                await client.put("w", "prompt", f"k{i % 5}", f"after {i}")
            final = await client.get_values_versioned("w", "prompt")
            await eventually(lambda: all(s.version >= final.version for s in subscribers), 60)
            assert all(prompts(r) == final.value for r in recorders)
            assert fetches("missed-poke") == missed, "the pokes' chain held across the fail-over"
        finally:
            await asyncio.gather(*(s.stop() for s in subscribers))

"""One transaction per write (docs/design.md §7): the writer writes the pokes of its writes in their own
transaction, so a poke commits or aborts with its write, none is lost or duplicated across a fail-over,
and a deployment upgraded while its projector lagged gets the pokes of that gap exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from eventconfig.codec import default_codec
from eventconfig.kafka.topics import admin_client
from eventconfig.model import POKED_HEADER
from eventconfig.process import ConfigService
from eventconfig.push.role import PushProjector
from tests.integration.test_guarantees import kill_the_active_writer_under_load
from tests.integration.test_pokes import assert_pokes_cover_history, mutations, pokes

pytestmark = pytest.mark.integration
codec = default_codec()
MARKER = codec.encode_log_key("", "", "")


async def read_uncommitted(settings, topic: str) -> list:
    """Every record of ``topic``, those of aborted transactions included (the transaction markers are not)."""
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level="read_uncommitted",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        records = []
        while await consumer.position(tp) < end:
            records += (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
        return records
    finally:
        await consumer.stop()


async def poked_markers(wire, settings) -> list[tuple[int, bool]]:
    """(version, flagged as poked by its writer) of every commit marker in the log."""
    return [(codec.decode("LogEntry", r.value)["version"], any(name == POKED_HEADER for name, _ in r.headers))
            for r in await wire.read_topic(settings.topics.log) if r.key == MARKER]


async def test_a_poke_commits_and_aborts_with_its_write(settings, topics, wire):
    # The history topic refuses the big write's Mutation: the batch's transaction aborts, and the writer redoes
    # its requests one at a time (the big one is dead-lettered, the next write takes its version).
    async with admin_client(settings) as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topics.history,
                                                  {"max.message.bytes": "3000"})])
    calls = [[{"type": "small", "key": "a", "value": "1"}], [{"type": "big", "key": "b", "value": "x" * 4000}],
             [{"type": "after", "key": "c", "value": "2"}]]
    ids = [str(uuid.uuid4()) for _ in calls]
    answers = [wire.expect(rid) for rid in ids]
    for rid, values in zip(ids, calls):  # all queued before the writer starts: one batch, one transaction
        await wire.send_raw(codec.encode("ConfigRequest", {"operation": "put", "workspace": "w", "values": values}),
                            [("id", rid.encode())])
    service = ConfigService(settings, projector=False)  # every poke here is the writer's
    await service.start()
    try:
        versions = [codec.decode("ConfigResponse", (await asyncio.wait_for(answers[i], 60)).value)["version"]
                    for i in (0, 2)]
        assert versions == [1, 2]
        committed = await pokes(wire, settings, 2)
        assert [(p["previous_version"], p["version"], p["changes"]) for p in committed] == [
            (0, 1, {"small": ["w"]}), (1, 2, {"after": ["w"]})]
        assert_pokes_cover_history(committed, await mutations(wire, settings))
        # The aborted transaction held the pokes of its writes: on the topic, behind an abort marker.
        aborted = [codec.decode("ConfigPush", r.value) for r in await read_uncommitted(settings, settings.topics.notify)]
        assert (2, {"big": ["w"]}) in [(p["version"], p["changes"]) for p in aborted]
        assert len(aborted) > len(committed)
        log_values = [r.value for r in await read_uncommitted(settings, settings.topics.log)]
        assert any(v and b"x" * 4000 in v for v in log_values), "the big write's log record aborted with its poke"
        assert await poked_markers(wire, settings) == [(1, True), (2, True)]
    finally:
        await service.stop()


async def test_no_version_lacks_a_poke_or_gets_two_across_a_writer_kill_9(settings, topics, wire, processes,
                                                                          tmp_path):
    acked: dict[str, int] = {}
    load = await kill_the_active_writer_under_load(settings, wire, processes, tmp_path, acked)
    await asyncio.wait_for(load, 120)

    history = await mutations(wire, settings)
    found = await pokes(wire, settings, history[-1]["version"])
    assert [p["version"] for p in found] == [m["version"] for m in history], "one poke per version, in order"
    assert_pokes_cover_history(found, history)
    assert all(poked for _, poked in await poked_markers(wire, settings)), "the writers made every poke"


async def test_an_upgrade_gets_the_pokes_of_a_lagging_projector_exactly_once_and_in_order(settings, topics, wire):
    old = dataclasses.replace(settings, writer_pokes=False)  # the writer of before: the projector pokes

    async def run(service_settings, projector: bool, puts: range) -> None:
        """A service; with ``projector``, a projector started once its writer took over (and decided)."""
        service = ConfigService(service_settings, projector=False)
        await service.start()
        running = None
        try:
            await service.writer.wait_active(60)
            if projector:
                running = asyncio.create_task(PushProjector(service_settings).run())
            for i in puts:
                await wire.put(f"w{i % 2}", (f"t{i % 3}", str(i), "v"))
            if projector:
                await pokes(wire, settings, puts[-1] + 1)
        finally:
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            await service.stop()

    await run(old, True, range(0, 5))  # versions 1-5 poked by the projector, its offset committed past them
    await run(old, False, range(5, 15))  # versions 6-15 without pokes: the projector lags behind them
    assert [p["version"] for p in await pokes(wire, settings, 5)] == [1, 2, 3, 4, 5]
    await run(settings, True, range(15, 20))  # new: versions 1-15 are still the projector's, so 16-20 too
    await run(settings, True, range(20, 25))  # the next take-over finds nothing waiting: the writer pokes

    history = await mutations(wire, settings)
    found = await pokes(wire, settings, 25)
    assert [p["version"] for p in found] == list(range(1, 26)), "exactly one poke per version, in order"
    assert_pokes_cover_history(found, history)
    assert await poked_markers(wire, settings) == [(v, v > 20) for v in range(1, 26)]

"""Issue 20 item 1: reads of the read topic are answered by every ``serve`` process, active or standby,
and never older than a write acknowledged before the read was sent (docs/design.md §6), across kill -9
and SIGSTOP of either process and while the writer fails over. Reads on the request topic are answered
by the writer as before (the other integration modules send all their reads there)."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from bench.env import free_port, read_topic_answers as answered, read_topic_partitions as held
from eventconfig.client import ConfigClient
from eventconfig.kafka.reading import committed_consumer
from eventconfig.kafka.topics import admin_client
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from tests.support import activations, start_process, wait_serving, wait_until

pytestmark = pytest.mark.integration


def serve(settings: Settings, tmp_path: Path, processes: list, names: tuple[str, ...] = ("a", "b")
          ) -> dict[str, tuple[object, Path, int]]:
    """One ``serve`` process per name with a metrics port: name -> (process, log, port)."""
    started = {}
    for name in names:
        port = free_port()
        proc = start_process(settings, "serve", tmp_path / name, tmp_path / f"{name}.log",
                             extra_env={"EVENTCONFIG_METRICS_PORT": str(port)})
        processes.append(proc)
        started[name] = (proc, tmp_path / f"{name}.log", port)
    return started


@pytest.fixture
async def reader(settings):
    """A ConfigClient that sends its reads to the read topic."""
    async with ConfigClient(replace(settings, client_reads_on_read_topic=1), timeout=90) as client:
        assert client.read_topic == settings.topics.read
        yield client


async def test_each_of_two_processes_answers_a_share_of_reads_and_none_is_older_than_an_acknowledged_write(
        settings, topics, wire, reader, processes, tmp_path):
    started = serve(settings, tmp_path, processes)
    await wait_serving(wire)
    ports = [port for _, _, port in started.values()]
    await wait_until(lambda: all(_reachable(p) for p in ports), 60, "the metrics endpoints did not come up")
    # The second process to join the readers' group gets its partition at the group's next rebalance:
    # reads sent before then are all the first one's.
    await wait_until(lambda: all(held(p) == 1 for p in ports), 60,
                     "the readers' group did not give each process one of the two read partitions")
    for n in range(1, 41):
        assert (await wire.put("w", ("t", "k", str(n))))["error"] is None
        assert await reader.get("w", "t", "k") == str(n), "a read returned data older than an acknowledged write"
    shares = [answered(p) for p in ports]
    print(f"reads answered per serve process: {shares}")
    assert sum(shares) >= 40 and all(share > 0 for share in shares), shares


async def test_no_stale_read_across_sigstop_and_kill_9_of_either_process_and_reads_go_on_while_the_writer_fails_over(
        settings, topics, wire, reader, processes, tmp_path):
    started = serve(settings, tmp_path, processes)
    await wait_serving(wire)
    acked = 0

    async def put_and_read(rounds: int) -> None:
        nonlocal acked
        for _ in range(rounds):
            response = await wire.put("w", ("t", "k", str(acked + 1)), timeout=90)
            assert response["error"] is None
            acked = int(response["version"])
            value = await reader.get("w", "t", "k")
            assert value is not None and int(value) >= acked, f"read {value} after write {acked} was acknowledged"

    await put_and_read(5)
    writer = next(name for name, (_, log, _) in started.items() if activations(log))
    standby = next(name for name in started if name != writer)

    # The standby pauses past its session (its read partitions move to the writer), then resumes with a
    # stale view: whatever it answers must still be current.
    started[standby][0].send_signal(signal.SIGSTOP)  # type: ignore[attr-defined]
    await put_and_read(5)
    started[standby][0].send_signal(signal.SIGCONT)  # type: ignore[attr-defined]
    await put_and_read(5)

    # kill -9 of the active writer: reads keep being answered while the standby takes the writer role.
    started[writer][0].kill()  # type: ignore[attr-defined]
    pending_put = asyncio.create_task(wire.put("w", ("t", "k", "after-kill"), timeout=120))
    reads_during = 0

    async def read_on() -> None:  # reads go to random partitions: some reach the survivor's at once
        nonlocal reads_during
        while not pending_put.done():
            value = await reader.get("w", "t", "k")
            assert value is not None and (value == "after-kill" or int(value) >= acked)
            reads_during += 0 if pending_put.done() else 1

    await asyncio.gather(*(read_on() for _ in range(8)))
    assert (await pending_put)["error"] is None
    print(f"reads answered while the writer failed over: {reads_during}")
    assert reads_during > 0, "no read was answered while the writer failed over"
    assert await reader.get("w", "t", "k") == "after-kill"
    acked = int((await wire.call("config", "w"))["version"])
    await put_and_read(5)

    # A new standby joins, then the (new) active writer is paused and resumes as a zombie.
    more = serve(settings, tmp_path, processes, ("c",))
    await wait_until(lambda: _reachable(more["c"][2]), 60, "the third process did not come up")
    started[standby][0].send_signal(signal.SIGSTOP)  # type: ignore[attr-defined]
    await wait_until(lambda: activations(more["c"][1]) > 0, 90, "the third process did not take the writer role")
    await put_and_read(5)
    started[standby][0].send_signal(signal.SIGCONT)  # type: ignore[attr-defined]
    await put_and_read(5)


def _reachable(port: int) -> bool:
    try:
        answered(port)
        return True
    except OSError:
        return False


async def test_a_deployment_without_a_read_topic_keeps_working_with_reads_on_the_request_topic(settings, topics, wire,
                                                                                               tmp_path):
    """An upgrade: the topics were made before the read topic existed."""
    async with admin_client(settings) as admin:
        await admin.delete_topics([settings.topics.read])
        await wait_until(lambda: _gone(admin, settings.topics.read), 30, "the read topic was not deleted")
    service = ConfigService(replace(settings, data_dir=tmp_path / "svc"), projector=False)
    await service.start()
    try:
        assert service.read_server is None
        await service.writer.wait_active(60)
        assert (await wire.put("w", ("t", "k", "v")))["error"] is None
        async with ConfigClient(replace(settings, client_reads_on_read_topic=1), timeout=30) as client:
            assert client.read_topic == settings.topics.request
            assert await client.get("w", "t", "k") == "v"
    finally:
        await service.stop()


async def _gone(admin, topic: str) -> bool:  # type: ignore[no-untyped-def]
    return topic not in await admin.list_topics()


async def test_reads_answered_are_committed_so_a_restarted_reader_does_not_answer_them_again(service, settings, reader):
    """The read server commits what it answered (in the background, off the read path): the readers'
    group ends up committed at the read topic's end, and answers are never committed before they are sent
    (the reads themselves come back answered)."""
    await reader.put("w", "t", "k", "v")
    for _ in range(20):
        assert await reader.get("w", "t", "k") == "v"
    async with admin_client(settings) as admin:
        partitions = [p["partition"] for p in (await admin.describe_topics([settings.topics.read]))[0]["partitions"]]

        async def committed_at_end() -> bool:
            committed = await admin.list_consumer_group_offsets(settings.readers_group)
            ends = await _ends(settings, settings.topics.read, partitions)
            return all(tp in committed and committed[tp].offset == end for tp, end in ends.items() if end > 0)
        await wait_until(committed_at_end, 30, "the readers' group did not commit the reads it answered")


async def _ends(settings: Settings, topic: str, partitions: list[int]) -> dict[TopicPartition, int]:
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        await consumer.stop()

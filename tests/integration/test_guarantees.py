"""docs/design.md §9 guarantees 1, 4 and 5 with real processes: kill -9, restart, two writers, failover;
and no request is lost by a fail-over, not even a read parked for its ``min_version``.

The service runs as `python -m eventconfig serve` subprocesses; a load of concurrent clients writes
through the wire contract; the history topic (one Mutation per version) is the ground truth.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from dataclasses import replace

import pytest
from aiokafka import TopicPartition

from eventconfig.codec import default_codec
from eventconfig.kafka.topics import admin_client
from eventconfig.process import ConfigService
from eventconfig.settings import Settings
from eventconfig.view.materializer import Materializer
from eventconfig.writer import parking
from tests.support import activations, start_process, start_services, wait_serving, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


async def write_load(wire, name: str, count: int, acked: dict[str, int]) -> None:
    """One client writing ``count`` keys in sequence, retrying each until it is acknowledged."""
    for i in range(count):
        key = f"{name}-{i}"
        while True:
            try:
                response = await wire.put("load", ("t", key, key), timeout=5)
                break
            except asyncio.TimeoutError:
                continue  # no answer (the service was killed); a retry is a new request
        acked[key] = response["version"]


async def history_versions(wire, settings: Settings) -> list[int]:
    return [codec.decode("Mutation", r.value)["version"] for r in await wire.read_topic(settings.topics.history)]


async def test_kill_9_during_writes_loses_no_acknowledged_write_and_the_view_equals_a_replay(
        settings, topics, wire, processes, tmp_path):
    data_dir = tmp_path / "service"
    processes.append(start_process(settings, "serve", data_dir, tmp_path / "serve.log"))
    await wait_serving(wire)
    acked: dict[str, int] = {}
    load = asyncio.gather(*(write_load(wire, f"c{c}", 40, acked) for c in range(8)))
    await wait_until(lambda: len(acked) >= 60 or load.done(), 60, "the load did not get 60 writes acknowledged")
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait()
    processes.append(start_process(settings, "serve", data_dir, tmp_path / "serve.log"))
    await asyncio.wait_for(load, 120)

    state = (await wire.call("config", "load"))["config"].get("t", {})
    assert {k: state.get(k) for k in acked} == {k: k for k in acked}, "every acknowledged write survives"
    versions = await history_versions(wire, settings)
    assert versions == list(range(1, len(versions) + 1)), "no version duplicated or skipped"

    processes[1].send_signal(signal.SIGTERM)
    processes[1].wait(30)
    replay = Materializer(settings, tmp_path / "replay")
    await replay.start()
    await replay.wait_caught_up(60)
    restarted = Materializer(settings, data_dir / "view")
    await restarted.start()
    await restarted.wait_caught_up(60)
    try:
        fresh, resumed = replay.store.snapshot(), restarted.store.snapshot()
        assert list(resumed.scan_workspace("load")) == list(fresh.scan_workspace("load"))
        assert resumed.version == fresh.version == versions[-1]
    finally:
        await replay.stop()
        await restarted.stop()


async def kill_the_active_writer_under_load(settings, wire, processes, tmp_path,  # type: ignore[no-untyped-def]
                                            acked: dict[str, int]) -> asyncio.Future:
    """Two ``serve`` processes under a load of six clients; the active writer is killed (-9) once 40 writes
    are acknowledged. Returns the load, still running."""
    logs = start_services(settings, tmp_path)
    processes.extend(logs)
    await wait_serving(wire)
    load = asyncio.gather(*(write_load(wire, f"c{c}", 30, acked) for c in range(6)))
    await wait_until(lambda: len(acked) >= 40 or load.done(), 60, "the load did not get 40 writes acknowledged")
    active = next(p for p, log in logs.items() if activations(log))
    active.send_signal(signal.SIGKILL)
    return load


async def test_two_writers_never_duplicate_or_skip_and_the_standby_takes_over(
        settings, topics, wire, processes, tmp_path):
    acked: dict[str, int] = {}
    load = await kill_the_active_writer_under_load(settings, wire, processes, tmp_path, acked)
    started = asyncio.get_running_loop().time()
    before = len(acked)
    await wait_until(lambda: len(acked) > before or load.done(), 60,
                     "no write was acknowledged after the active writer was killed: the standby did not take over")
    takeover = asyncio.get_running_loop().time() - started
    await asyncio.wait_for(load, 120)

    assert takeover < 20, f"the standby took {takeover:.1f} s to take over"
    versions = await history_versions(wire, settings)
    assert versions == list(range(1, len(versions) + 1))
    assert sorted(acked.values()) == sorted(set(acked.values())), "two writes never share a version"
    state = (await wire.call("config", "load"))["config"]["t"]
    assert all(state[k] == k for k in acked)


async def writer_committed(settings: Settings) -> int:
    async with admin_client(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(settings.group_id("writer"))
    committed = offsets.get(TopicPartition(settings.topics.request, 0))
    return committed.offset if committed is not None else -1


async def send_parked_reads(wire, settings: Settings, count: int, min_version: int = 1) -> list[asyncio.Future]:
    """``count`` reads for ``min_version`` (not written yet), returned once the writer committed past them."""
    answers, last = [], -1
    for _ in range(count):
        read_id = str(uuid.uuid4())
        answers.append(wire.expect(read_id))
        sent = await wire.producer.send_and_wait(
            settings.topics.request, codec.encode("ConfigRequest", {"operation": "config", "workspace": "w",
                                                                    "min_version": min_version}),
            headers=[("id", read_id.encode())])
        last = sent.offset
    async with asyncio.timeout(30):
        while await writer_committed(settings) <= last:
            await asyncio.sleep(0.1)  # polling a condition: the writer consumed the reads and committed past them
    assert not any(answer.done() for answer in answers), "the reads are parked: their version does not exist yet"
    return answers


async def test_a_parked_min_version_read_survives_the_death_of_its_writer(
        settings, topics, wire, processes, tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTCONFIG_MIN_VERSION_WAIT_MS", "120000")  # the read would wait two minutes
    processes.append(start_process(settings, "serve", tmp_path / "a", tmp_path / "a.log"))
    await wait_serving(wire)
    (answer,) = await send_parked_reads(wire, settings, 1)

    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait()
    processes.append(start_process(settings, "serve", tmp_path / "b", tmp_path / "b.log"))
    assert (await wire.put("w", ("t", "k", "v"), timeout=60))["version"] == 1
    try:
        record = await asyncio.wait_for(answer, 10)
    except TimeoutError:
        pytest.fail("the read parked by the killed writer was not answered once the new writer reached its version")
    response = codec.decode("ConfigResponse", record.value)
    assert response["error"] is None and response["config"] == {"t": {"k": "v"}}


async def test_the_next_writer_resumes_after_the_last_write_and_answers_the_reads_its_commit_marker_names(
        settings, topics, wire, processes, tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTCONFIG_MIN_VERSION_WAIT_MS", "120000")
    processes.append(start_process(settings, "serve", tmp_path / "a", tmp_path / "a.log"))
    await wait_serving(wire)
    (answer,) = await send_parked_reads(wire, settings, 1, min_version=2)
    assert (await wire.put("w", ("t", "k", "v1")))["version"] == 1  # its commit marker names the parked read
    offset_in_group = await writer_committed(settings)

    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait()
    processes.append(start_process(settings, "serve", tmp_path / "b", tmp_path / "b.log"))
    assert (await wire.put("w", ("t", "k", "v2"), timeout=60))["version"] == 2, \
        "the put of v1 was not handled twice: the new writer resumed after it"
    try:
        record = await asyncio.wait_for(answer, 10)
    except TimeoutError:
        pytest.fail("the read named by the last commit marker was not answered by the next writer")
    assert codec.decode("ConfigResponse", record.value)["config"] == {"t": {"k": "v2"}}
    assert offset_in_group == await writer_committed(settings), \
        "writes commit their request offset on the commit marker, not in the writer group"


async def test_when_parked_reads_are_too_many_to_name_the_next_writer_re_parks_every_one_from_the_oldest(
        settings, topics, wire, tmp_path, monkeypatch):
    monkeypatch.setattr(parking, "MAX_METADATA_CHARS", 1)  # not even one offset fits: only where to start
    first, second = (ConfigService(replace(settings, data_dir=tmp_path / name, min_version_wait_ms=120_000),
                                   projector=False) for name in ("a", "b"))
    try:
        await first.start()
        await first.writer.wait_active(60)
        answers = await send_parked_reads(wire, settings, 3)
        await second.start()
        await first.stop()  # a graceful hand-over: the parked reads were only in the first writer's memory
        await second.writer.wait_active(60)
        assert (await wire.put("w", ("t", "k", "v"), timeout=60))["version"] == 1
        try:
            records = await asyncio.wait_for(asyncio.gather(*answers), 10)
        except TimeoutError:
            pytest.fail("reads parked by the previous writer were not answered once the new one reached their version")
        assert [codec.decode("ConfigResponse", r.value)["config"] for r in records] == [{"t": {"k": "v"}}] * 3
    finally:
        await first.stop()
        await second.stop()

"""The materializer against a real broker: committed writes only, resume without replay, rebuilds, waits."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from eventconfig import metrics
from eventconfig.errors import ViewError
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.logrecords import delete_record, marker_record, put_record
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings
from eventconfig.view import Materializer, ViewLockedError
from eventconfig.view.materializer import REPLAY_FLUSH_RECORDS
from eventconfig.view import store as store_module

pytestmark = pytest.mark.integration

Ops = dict[tuple[str, str, str], "str | None"]


class LogWriter:
    """Writes versions to the log topic the way the writer does: items, then a marker, in one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topics.log
        self.producer = AIOKafkaProducer(**settings.kafka_kwargs(),
                                         transactional_id=f"{settings.topic_prefix}.test-log")

    async def write(self, version: int, ops: Ops, *, marker: bool = True, abort: bool = False) -> None:
        records = [put_record(ItemKey(*i), v, version) if v is not None else delete_record(ItemKey(*i), version)
                   for i, v in ops.items()] + ([marker_record(version)] if marker else [])
        await self.producer.begin_transaction()
        for record in records:
            await self.producer.send(self.topic, record.value, key=record.key, headers=record.headers)
        await (self.producer.abort_transaction() if abort else self.producer.commit_transaction())


@pytest.fixture
async def log(settings: Settings):
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    writer = LogWriter(settings)
    await writer.producer.start()
    yield writer
    await writer.producer.stop()


@pytest.fixture
async def running():
    """Start materializers through this fixture so every one is stopped, even when a test fails."""
    started: list[Materializer] = []

    async def start(settings: Settings, **kwargs) -> Materializer:
        materializer = Materializer(settings, **kwargs)
        await materializer.start()
        started.append(materializer)
        return materializer

    yield start
    for materializer in started:
        await materializer.stop()


async def log_end(settings: Settings) -> int:
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        return await end_offset(consumer, TopicPartition(settings.topics.log, 0))
    finally:
        await consumer.stop()


def state(materializer: Materializer) -> dict[tuple[str, str, str], Entry]:
    view = materializer.store.snapshot()
    return {(w, t, k): e for w in ("w", "x", "_r") for t, k, e in view.scan_workspace(w)}


async def test_the_view_applies_committed_writes_and_never_aborted_ones(settings, log, running, caplog):
    await log.write(1, {("w", "t", "a"): "1", ("w", "t", "b"): "2"})
    await log.write(2, {("w", "t", "c"): "lost", ("w", "t", "a"): None}, abort=True)
    await log.write(2, {("w", "t", "b"): None, ("x", "t", "d"): "4"})
    caplog.set_level(logging.INFO, logger="eventconfig.view")
    materializer = await running(settings)
    assert await materializer.wait_caught_up(10) == 2
    assert state(materializer) == {("w", "t", "a"): Entry("1", 1), ("x", "t", "d"): Entry("4", 2)}
    assert materializer.rebuild_reason is None
    assert any(r.getMessage() == "caught up" and r.fields["version"] == 2 for r in caplog.records)


async def test_wait_caught_up_returns_when_the_log_ends_with_a_transaction_marker(settings, log, running):
    materializer = await running(settings)
    assert await materializer.wait_caught_up(10) == 0, "an empty log is caught up at once"
    await log.write(1, {("w", "t", "a"): "1"})
    assert await materializer.wait_caught_up(5) == 1
    # The log now ends with the commit's control record (offset 2), which is never delivered.
    assert await log_end(settings) == 3 == materializer.position == materializer.store.meta().offset


async def test_a_restart_resumes_from_the_stored_offset_without_replay(settings, log, running):
    for version in range(1, 6):
        await log.write(version, {("w", "t", f"k{version}"): str(version)})
    first = await running(settings)
    assert await first.wait_caught_up(10) == 5 and first.records_applied == 10
    await first.stop()

    second = await running(settings)
    assert await second.wait_caught_up(10) == 5
    assert second.records_applied == 0, "nothing is read again"
    assert len(state(second)) == 5
    await log.write(6, {("w", "t", "k1"): None})
    assert await second.wait_caught_up(10) == 6 and second.records_applied == 2
    assert ("w", "t", "k1") not in state(second)


async def test_a_view_of_another_format_is_rebuilt(settings, log, running, monkeypatch):
    await log.write(1, {("w", "t", "a"): "1"})
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "FORMAT_VERSION", 0)
        old = await running(settings)
        await old.wait_caught_up(10)
        await old.stop()
    await log.write(2, {("w", "t", "b"): "2"})
    rebuilt = await running(settings)
    assert await rebuilt.wait_caught_up(10) == 2
    assert "format version 0" in (rebuilt.rebuild_reason or "")
    assert rebuilt.records_applied == 4 and rebuilt.store.meta().format_version == store_module.FORMAT_VERSION
    assert state(rebuilt) == {("w", "t", "a"): Entry("1", 1), ("w", "t", "b"): Entry("2", 2)}


async def test_a_garbage_view_folder_is_rebuilt(settings, log, running):
    await log.write(1, {("w", "t", "a"): "1"})
    path = settings.data_dir / "view"
    path.mkdir(parents=True)
    (path / "CURRENT").write_bytes(b"\x00garbage\xff" * 10)
    materializer = await running(settings)
    assert await materializer.wait_caught_up(10) == 1
    assert "cannot open" in (materializer.rebuild_reason or "")
    assert state(materializer) == {("w", "t", "a"): Entry("1", 1)}


async def test_a_view_ahead_of_the_log_is_rebuilt(settings, log, running, unique, tmp_path):
    for version in range(1, 4):
        await log.write(version, {("w", "t", f"k{version}"): "old"})
    old = await running(settings)
    await old.wait_caught_up(10)
    await old.stop()
    # The same view pointed at a new, shorter log: what a recreated log topic looks like.
    copied = tmp_path / "copied-view"
    shutil.copytree(settings.data_dir / "view", copied)
    fresh = dataclasses.replace(settings, topic_prefix=f"t{unique}b")
    async with admin_client(fresh) as admin:
        await create_topics(admin, fresh)
    fresh_log = LogWriter(fresh)
    await fresh_log.producer.start()
    try:
        await fresh_log.write(1, {("w", "t", "new"): "new"})
    finally:
        await fresh_log.producer.stop()
    rebuilt = await running(fresh, path=copied)
    assert await rebuilt.wait_caught_up(10) == 1
    assert "beyond the log's end" in (rebuilt.rebuild_reason or "")
    assert state(rebuilt) == {("w", "t", "new"): Entry("new", 1)}


async def offline_for(materializer: Materializer, ms: int) -> None:
    """Stop the view and make it look as if it last saw the log's end ``ms`` ago (no sleeping)."""
    path = materializer.path
    await materializer.stop()
    with store_module.ViewStore.open(path) as store:
        store.mark_caught_up(int(time.time() * 1000) - ms)


async def test_a_view_offline_longer_than_the_topics_delete_retention_is_rebuilt_unless_the_log_did_not_move(
        settings, running):
    """The rule reads delete.retention.ms from the log topic: the setting says a day, the topic 5 s."""
    async with admin_client(settings) as admin:
        await create_topics(admin, dataclasses.replace(settings, log_delete_retention_ms=5000))
    log = LogWriter(settings)
    await log.producer.start()
    try:
        await log.write(1, {("w", "t", "a"): "1"})
        first = await running(settings)
        await first.wait_caught_up(10)
        await offline_for(first, 60_000)
        idle = await running(settings)
        await idle.wait_caught_up(10)
        assert idle.rebuild_reason is None, "nothing was written meanwhile, so no tombstone was missed"
        await offline_for(idle, 60_000)
        await log.write(2, {("w", "t", "a"): None})
    finally:
        await log.producer.stop()
    rebuilt = await running(settings)
    assert await rebuilt.wait_caught_up(10) == 2
    assert "delete.retention.ms 5000" in (rebuilt.rebuild_reason or "") and state(rebuilt) == {}


async def test_a_view_offline_within_the_topics_delete_retention_resumes_whatever_the_setting_says(
        settings, log, running):
    await log.write(1, {("w", "t", "a"): "1"})
    first = await running(settings)
    await first.wait_caught_up(10)
    await offline_for(first, 60_000)
    await log.write(2, {("w", "t", "a"): None})
    resumed = await running(dataclasses.replace(settings, log_delete_retention_ms=1))  # the topic keeps a day
    assert await resumed.wait_caught_up(10) == 2
    assert resumed.rebuild_reason is None and resumed.records_applied == 2 and state(resumed) == {}


async def test_log_lag_shows_the_records_the_view_has_not_applied(settings, log, running):
    materializer = await running(settings, name="lag-test")
    await materializer.wait_caught_up(10)
    metrics.LOG_LAG.labels("lag-test").set(-1)  # whatever was there: the materializer must set it

    def lag() -> float | None:
        return REGISTRY.get_sample_value("eventconfig_log_lag_records", {"view": "lag-test"})

    await log.write(1, {("w", "t", f"k{i}"): "v" for i in range(5)})
    await materializer.wait_for_version(1, 10)
    await eventually(lambda: lag() == 0, "the lag did not come back to 0")
    # A write whose commit marker has not arrived yet is not applied: its 2 items are lag.
    await log.write(2, {("w", "t", "x"): "v", ("w", "t", "y"): "v"}, marker=False)
    await eventually(lambda: (lag() or 0) >= 2, "the lag did not show the 2 unapplied records")
    assert materializer.version == 1


async def eventually(condition, message: str, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(0.02)


async def test_wait_for_version(settings, log, running):
    materializer = await running(settings)
    assert await materializer.wait_for_version(0, 5) is True
    assert await materializer.wait_for_version(1, 0.2) is False
    waiting = asyncio.create_task(materializer.wait_for_version(2, 10))
    await log.write(1, {("w", "t", "a"): "1"})
    await log.write(2, {("w", "t", "a"): "2"})
    assert await waiting is True and materializer.version == 2
    assert await materializer.wait_for_version(1, 0) is True


async def test_a_replay_with_few_markers_flushes_buffered_items_and_ends_complete(settings, log, running):
    # What compaction leaves: many items of old versions, and only the latest marker; more of them than
    # a replaying view buffers before it writes out incomplete versions (several fetches' worth).
    old = REPLAY_FLUSH_RECORDS + 100
    await log.write(1, {("w", "t", f"k{i:05}"): str(i) for i in range(old)}, marker=False)
    await log.write(7, {("w", "t", "last"): "7"})
    materializer = await running(settings)
    assert await materializer.wait_caught_up(60) == 7
    assert len(state(materializer)) == old + 1 and materializer.store.meta().offset == materializer.position


async def test_waits_raise_instead_of_hanging_when_the_loop_dies(settings, log, running):
    materializer = await running(settings)
    await materializer.wait_caught_up(10)

    def broken(writes):
        raise ViewError("disk on fire")

    materializer.store.write = broken  # type: ignore[method-assign]
    await log.write(1, {("w", "t", "a"): "1"})
    with pytest.raises(ViewError, match="disk on fire"):
        await materializer.wait_for_version(1, 10)
    with pytest.raises(ViewError, match="stopped"):
        await materializer.wait_caught_up(10)


async def test_a_second_materializer_on_the_same_view_is_refused_not_rebuilt(settings, log, running):
    await log.write(1, {("w", "t", "a"): "1"})
    first = await running(settings)
    await first.wait_caught_up(10)
    with pytest.raises(ViewLockedError, match="gave up after 200 ms"):
        await running(dataclasses.replace(settings, view_open_wait_ms=200))
    assert await first.wait_caught_up(5) == 1 and state(first) == {("w", "t", "a"): Entry("1", 1)}


async def test_a_log_topic_with_two_partitions_is_refused(settings):
    from aiokafka.admin import NewTopic

    from eventconfig.errors import TopologyError
    from eventconfig.kafka.topics import wait_visible

    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(settings.topics.log, 2, 1, topic_configs={"cleanup.policy": "compact"})])
        await wait_visible(admin, [settings.topics.log])
    with pytest.raises(TopologyError, match="2 partitions"):
        await Materializer(settings).start()

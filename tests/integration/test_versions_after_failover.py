"""After a fail-over or restart the writer issues versions above every version already in the log or
the history, even when stray records (a lower marker, a higher history record) say otherwise."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from eventconfig.codec import default_codec
from eventconfig.logrecords import marker_record
from eventconfig.process import ConfigService
from eventconfig.settings import Settings

pytestmark = pytest.mark.integration
codec = default_codec()


@asynccontextmanager
async def serving(settings: Settings, data_dir: Path) -> AsyncIterator[ConfigService]:
    service = ConfigService(dataclasses.replace(settings, data_dir=data_dir), projector=False)
    await service.start()
    try:
        await service.writer.wait_active(60)
        yield service
    finally:
        await service.stop()


async def send(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def stray_marker(settings: Settings, version: int) -> None:
    record = marker_record(version)
    await send(settings, settings.topics.log, record.key, record.value)


async def stray_history(settings: Settings, version: int) -> None:
    mutation = {"version": version, "timestamp_ms": 1, "request_id": "stray", "actor": None, "workspace": "w",
                "operation": "put", "changes": []}
    await send(settings, settings.topics.history, str(version).encode(), codec.encode("Mutation", mutation))


async def test_the_writer_continues_above_stray_log_markers_and_history_records(settings, topics, wire, tmp_path):
    async with serving(settings, tmp_path / "a"):
        assert (await wire.put("w", ("t", "k", "1")))["version"] == 1
        await stray_marker(settings, 50)
        await stray_marker(settings, 10)  # lower than the marker before it
    async with serving(settings, tmp_path / "b") as standby:  # a fresh replay of the log
        assert standby.materializer.version == 50
        assert (await wire.put("w", ("t", "k", "2")))["version"] == 51
        await stray_history(settings, 80)
    async with serving(settings, tmp_path / "a") as restarted:  # resumes its own view
        assert (await wire.put("w", ("t", "k", "3")))["version"] == 81
        assert (await wire.call("get", "w", keys=[{"type": "t", "key": "k"}]))["values"][0]["version"] == 81
        assert await restarted.materializer.wait_for_version(81, 10), "the view follows the writer"

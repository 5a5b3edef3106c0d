"""After a fail-over or restart the writer issues versions above every version already in the log, even
when stray markers (a lower one after a higher one) say otherwise. A history that ends above the log
makes the writer refuse instead (tests/integration/test_history_takeover.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from eventconfig.logrecords import marker_record
from eventconfig.process import ConfigService
from eventconfig.settings import Settings

pytestmark = pytest.mark.integration


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


async def test_the_writer_continues_above_stray_log_markers(settings, topics, wire, tmp_path):
    async with serving(settings, tmp_path / "a"):
        assert (await wire.put("w", ("t", "k", "1")))["version"] == 1
        await stray_marker(settings, 50)
        await stray_marker(settings, 10)  # lower than the marker before it
    async with serving(settings, tmp_path / "b") as standby:  # a fresh replay of the log
        assert standby.materializer.version == 50
        assert (await wire.put("w", ("t", "k", "2")))["version"] == 51
    async with serving(settings, tmp_path / "a") as restarted:  # resumes its own view
        assert (await wire.put("w", ("t", "k", "3")))["version"] == 52
        assert (await wire.call("get", "w", keys=[{"type": "t", "key": "k"}]))["values"][0]["version"] == 52
        assert await restarted.materializer.wait_for_version(52, 10), "the view follows the writer"

"""A raw wire client for black-box service tests: it speaks only the contract of docs/design.md §4.

It sends Avro single-object ``ConfigRequest`` bytes with an ``id`` header (and no ``reply-partition``)
and waits for the ``ConfigResponse`` with the same ``id`` on every response partition, reading with
``read_committed`` as the contract demands;
it can also send arbitrary bytes and headers, and read whole topics.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from eventconfig.codec import default_codec
from eventconfig.kafka.reading import read_whole
from eventconfig.settings import Settings

codec = default_codec()


class Wire:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                         isolation_level="read_committed", enable_auto_commit=False)
        self.responses: dict[str, asyncio.Future[ConsumerRecord]] = {}
        self.unmatched: list[ConsumerRecord] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        topic = self.settings.topics.response
        tps = [TopicPartition(topic, p) for p in sorted(await self.producer.partitions_for(topic))]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
        await self.consumer.stop()
        await self.producer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    rid = dict(record.headers).get("id", b"").decode()
                    future = self.responses.get(rid)
                    if future is not None and not future.done():
                        future.set_result(record)
                    else:
                        self.unmatched.append(record)

    async def send_raw(self, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        await self.producer.send_and_wait(self.settings.topics.request, value, headers=headers)

    async def call(self, operation: str, workspace: str = "w", *, actor: str | None = None,
                   timeout: float = 20, **fields: Any) -> dict[str, Any]:
        """Send one request and return its decoded response (error responses included)."""
        rid = str(uuid.uuid4())
        future = self.expect(rid)
        headers = [("id", rid.encode())] + ([("actor", actor.encode())] if actor else [])
        await self.send_raw(codec.encode("ConfigRequest", {"operation": operation, "workspace": workspace,
                                                            **fields}), headers)
        record = await asyncio.wait_for(future, timeout)
        return codec.decode("ConfigResponse", record.value)

    def expect(self, rid: str) -> asyncio.Future[ConsumerRecord]:
        future: asyncio.Future[ConsumerRecord] = asyncio.get_running_loop().create_future()
        self.responses[rid] = future
        return future

    async def put(self, workspace: str, *items: tuple[str, str, str], **fields: Any) -> dict[str, Any]:
        return await self.call("put", workspace, values=[{"type": t, "key": k, "value": v} for t, k, v in items],
                               **fields)

    async def delete(self, workspace: str, *keys: tuple[str, str]) -> dict[str, Any]:
        return await self.call("delete", workspace, keys=[{"type": t, "key": k} for t, k in keys])

    async def read_topic(self, topic: str) -> list[ConsumerRecord]:
        return await read_whole(self.settings, topic)


@pytest.fixture
def processes():
    """Service subprocesses a test starts (append them); each is stopped (resumed first, if paused) at the end."""
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for proc in running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def topics(settings):
    """The seven topics of this test's deployment, created before the test (and before `wire`)."""
    from eventconfig.kafka.topics import admin_client, create_topics

    async with admin_client(settings) as admin:
        await create_topics(admin, settings)


@pytest.fixture
async def wire(settings: Settings):
    client = Wire(settings)
    await client.start()
    yield client
    await client.stop()

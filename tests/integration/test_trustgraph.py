"""The TrustGraph front end against the real ``trustgraph-base`` client and processor, unchanged.

``serve`` runs as a subprocess started the documented way (``python -m eventconfig serve --trustgraph``).
Each test serves its own topicspace (``tg<unique>``) except the processor test: TrustGraph's
processors hard-code ``tg`` for the config request and response queues, so that test serves ``tg``
itself, after deleting the ``tg.*.config`` topics of earlier runs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from trustgraph.base.async_config_client import AsyncConfigClient
from trustgraph.base.async_kafka_backend import AsyncKafkaBackend
from trustgraph.base.workspace_processor import WorkspaceProcessor
from trustgraph.schema import ConfigRequest, ConfigResponse, ConfigValue

from eventconfig.audit import HistoryQuery, HistoryReader
from eventconfig.client import ConfigClient, LocalView
from eventconfig.kafka.topics import admin_client, topic_configs
from eventconfig.settings import Settings
from eventconfig.trustgraph.wire import TrustGraphTopics
from tests.support import start_process

pytestmark = pytest.mark.integration


async def eventually(check: Callable[[], Awaitable[Any] | Any], what: str, timeout: float = 20) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"within {timeout} s: {what}")
        await asyncio.sleep(0.05)


@dataclass
class TrustGraphDeployment:
    settings: Settings
    topicspace: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def topics(self) -> TrustGraphTopics:
        return TrustGraphTopics.of(self.topicspace)

    async def client(self) -> AsyncConfigClient:
        """TrustGraph's own config client over its own Kafka backend, once the front end answers it."""
        backend = AsyncKafkaBackend(bootstrap_servers=self.settings.bootstrap_servers)
        client = await AsyncConfigClient.create(backend, f"request:{self.topicspace}:config",
                                                f"response:{self.topicspace}:config")
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                await client.request(ConfigRequest(operation="config", workspace="probe"), timeout=1)
                return client
            except asyncio.TimeoutError:
                assert self.process.poll() is None, f"serve exited:\n{self.log.read_text()[-3000:]}"
                if asyncio.get_running_loop().time() > deadline:
                    await client.close()
                    raise AssertionError(f"the TrustGraph front end did not answer:\n{self.log.read_text()[-3000:]}")


async def topics_exist(settings: Settings, names: list[str]) -> bool:
    async with admin_client(settings) as admin:
        return all(t["error_code"] == 0 for t in await admin.describe_topics(names))


@asynccontextmanager
async def serving(settings: Settings, tmp_path: Path, topicspace: str, *flags: str
                  ) -> AsyncIterator[TrustGraphDeployment]:
    """``eventconfig serve`` with the TrustGraph front end, as the README documents it."""
    log = tmp_path / f"serve-{topicspace}.log"
    process = start_process(settings, "serve", tmp_path / "serve-data", log, *flags)
    deployment = TrustGraphDeployment(settings, topicspace, process, log)
    try:
        names = [deployment.topics.request, deployment.topics.response, deployment.topics.notify]
        await eventually(lambda: process.poll() is not None or topics_exist(settings, names),
                         "serve creates the TrustGraph topics", timeout=60)
        assert process.poll() is None, f"serve exited:\n{log.read_text()[-3000:]}"
        yield deployment
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
async def tg(settings: Settings, topics: None, tmp_path: Path, unique: str) -> AsyncIterator[TrustGraphDeployment]:
    async with serving(settings, tmp_path, f"tg{unique}", "--trustgraph-topicspace", f"tg{unique}") as deployment:
        yield deployment


@pytest.fixture
async def tg_client(tg: TrustGraphDeployment) -> AsyncIterator[AsyncConfigClient]:
    client = await tg.client()
    yield client
    await client.close()


async def read_all(settings: Settings, topic: str, committed: bool = False) -> list[ConsumerRecord]:
    """Every record of ``topic`` (uncommitted ones too unless ``committed``, as TrustGraph reads)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                isolation_level="read_committed" if committed else "read_uncommitted")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        records: list[ConsumerRecord] = []
        while await consumer.position(tp) < end:
            records += (await consumer.getmany(tp, timeout_ms=200)).get(tp, [])
        return records
    finally:
        await consumer.stop()


# --- the client, every operation --------------------------------------------------------------------


async def test_trustgraphs_client_runs_every_operation(tg: TrustGraphDeployment, tg_client: AsyncConfigClient):
    c = tg_client
    start = (await c.request(ConfigRequest(operation="config", workspace="w"))).version
    await c.put("w", "prompt", "system", '"You are helpful"')
    await c.put_many("w", [("prompt", "user", "u"), ("flow", "f1", "{}")])
    await c.put("other", "prompt", "system", "o")
    await c.put("__template__", "prompt", "system", "t")

    assert await c.get("w", "prompt", "system") == '"You are helpful"'
    assert await c.get("w", "prompt", "missing") is None
    assert await c.keys("w", "prompt") == ["system", "user"]
    assert await c.get_all("w") == {"prompt": {"system": '"You are helpful"', "user": "u"}, "flow": {"f1": "{}"}}
    assert await c.workspaces_for_type("prompt") == {"w", "other", "__template__"}

    got = await c.request(ConfigRequest(operation="get", workspace="w", keys=[
        {"type": "prompt", "key": "user"}, {"type": "prompt", "key": "nope"}]))
    assert got == ConfigResponse(version=start + 4, values=[ConfigValue("prompt", "user", "u", ""),
                                                            ConfigValue("prompt", "nope", None, "")])
    getvalues = await c.request(ConfigRequest(operation="getvalues", workspace="w", type="prompt"))
    assert [(v.key, v.value, v.workspace) for v in getvalues.values] == [("system", '"You are helpful"', ""),
                                                                         ("user", "u", "")]
    all_ws = await c.request(ConfigRequest(operation="getvalues-all-ws", type="prompt"))
    assert sorted((v.workspace, v.key, v.value) for v in all_ws.values) == [
        ("__template__", "system", "t"), ("other", "system", "o"), ("w", "system", '"You are helpful"'),
        ("w", "user", "u")]
    keys_all = await c.request(ConfigRequest(operation="getkeys-all-ws", type="prompt"))
    assert keys_all.version == start + 4
    assert sorted((v.workspace, v.key, v.value) for v in keys_all.values) == [
        ("__template__", "system", ""), ("other", "system", ""), ("w", "system", ""), ("w", "user", "")]

    written = await c.request(ConfigRequest(operation="delete", workspace="w", keys=[{"type": "prompt", "key": "user"}]))
    assert written == ConfigResponse()  # version 0, error null: the seed's write response
    assert await c.keys("w", "prompt") == ["system"]
    assert (await c.request(ConfigRequest(operation="list", workspace="w", type="prompt"))).version == start + 5


async def test_errors_reach_trustgraphs_client_as_the_seed_sent_them(tg_client: AsyncConfigClient):
    with pytest.raises(RuntimeError, match="^bad-request: Workspace is required$"):
        await tg_client.get("", "prompt", "k")
    with pytest.raises(RuntimeError, match="^bad-request: Workspace is required$"):
        await tg_client._request(operation="nonsense")  # the client's own error check, for any operation
    with pytest.raises(RuntimeError, match="^bad-operation: Bad operation$"):
        await tg_client._request(operation="nonsense", workspace="w")
    with pytest.raises(RuntimeError, match="^bad-request: value of prompt/k is null"):
        await tg_client.put("w", "prompt", "k", None)
    with pytest.raises(RuntimeError, match="^bad-request: type must not be empty"):
        await tg_client.put("w", "", "k", "v")
    assert await tg_client.get_all("w") == {}, "failed writes wrote nothing"


"""The TrustGraph front end against the real ``trustgraph-base`` client and processor, unchanged.

``serve`` runs as a subprocess started the documented way (``python -m eventconfig serve --trustgraph``).
The client tests share one deployment serving its own topicspace (``tg<unique>``), each test in its
own workspaces and types. The processor test serves ``tg`` itself: TrustGraph's processors hard-code
``tg`` for the config request and response queues, so it first deletes the ``tg.*.config`` topics of
earlier runs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
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
from eventconfig.kafka.topics import admin_client, create_topics, topic_configs
from eventconfig.process import ConfigService
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
                    raise AssertionError(
                        f"the TrustGraph front end did not answer:\n{self.log.read_text()[-3000:]}") from None


async def topics_exist(settings: Settings, names: list[str]) -> bool:
    async with admin_client(settings) as admin:
        return all(t["error_code"] == 0 for t in await admin.describe_topics(names))


@asynccontextmanager
async def serving(settings: Settings, tmp_path: Path, topicspace: str, *flags: str
                  ) -> AsyncIterator[TrustGraphDeployment]:
    """``eventconfig serve`` with the TrustGraph front end, as the README documents it."""
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
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


@pytest.fixture(scope="module")
async def tg(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TrustGraphDeployment]:
    """One deployment serving the topicspace ``tg<unique>`` for the client tests of this module."""
    unique = uuid.uuid4().hex[:10]
    tmp_path = tmp_path_factory.mktemp("trustgraph")
    settings = Settings.load({"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"t{unique}",
                              "data_dir": tmp_path / "data"}, env={})
    async with serving(settings, tmp_path, f"tg{unique}", "--trustgraph-topicspace", f"tg{unique}") as deployment:
        yield deployment


@pytest.fixture(scope="module")
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


async def test_trustgraphs_client_runs_every_operation(tg_client: AsyncConfigClient, unique: str):
    c, w, other, prompt = tg_client, f"w{unique}", f"o{unique}", f"prompt{unique}"
    start = (await c.request(ConfigRequest(operation="config", workspace=w))).version
    await c.put(w, prompt, "system", '"You are helpful"')
    await c.put_many(w, [(prompt, "user", "u"), ("flow", "f1", "{}")])
    await c.put(other, prompt, "system", "o")
    await c.put("__template__", prompt, "system", "t")

    assert await c.get(w, prompt, "system") == '"You are helpful"'
    assert await c.get(w, prompt, "missing") is None
    assert await c.keys(w, prompt) == ["system", "user"]
    assert await c.get_all(w) == {prompt: {"system": '"You are helpful"', "user": "u"}, "flow": {"f1": "{}"}}
    assert await c.workspaces_for_type(prompt) == {w, other, "__template__"}

    got = await c.request(ConfigRequest(operation="get", workspace=w, keys=[
        {"type": prompt, "key": "user"}, {"type": prompt, "key": "nope"}]))
    assert got == ConfigResponse(version=start + 4, values=[ConfigValue(prompt, "user", "u", ""),
                                                            ConfigValue(prompt, "nope", None, "")])
    getvalues = await c.request(ConfigRequest(operation="getvalues", workspace=w, type=prompt))
    assert [(v.key, v.value, v.workspace) for v in getvalues.values] == [("system", '"You are helpful"', ""),
                                                                         ("user", "u", "")]
    all_ws = await c.request(ConfigRequest(operation="getvalues-all-ws", type=prompt))
    assert sorted((v.workspace, v.key, v.value) for v in all_ws.values) == sorted([
        ("__template__", "system", "t"), (other, "system", "o"), (w, "system", '"You are helpful"'), (w, "user", "u")])
    keys_all = await c.request(ConfigRequest(operation="getkeys-all-ws", type=prompt))
    assert keys_all.version == start + 4
    assert sorted((v.workspace, v.key, v.value) for v in keys_all.values) == sorted([
        ("__template__", "system", ""), (other, "system", ""), (w, "system", ""), (w, "user", "")])

    written = await c.request(ConfigRequest(operation="delete", workspace=w, keys=[{"type": prompt, "key": "user"}]))
    assert written == ConfigResponse()  # version 0, error null: the seed's write response
    assert await c.keys(w, prompt) == ["system"]
    assert (await c.request(ConfigRequest(operation="list", workspace=w, type=prompt))).version == start + 5


async def test_errors_reach_trustgraphs_client_as_the_seed_sent_them(tg_client: AsyncConfigClient, unique: str):
    w = f"w{unique}"
    with pytest.raises(RuntimeError, match="^bad-request: Workspace is required$"):
        await tg_client.get("", "prompt", "k")
    with pytest.raises(RuntimeError, match="^bad-request: Workspace is required$"):
        await tg_client._request(operation="nonsense")  # the client's own error check, for any operation
    with pytest.raises(RuntimeError, match="^bad-operation: Bad operation$"):
        await tg_client._request(operation="nonsense", workspace=w)
    with pytest.raises(RuntimeError, match="^bad-request: value of prompt/k is null"):
        await tg_client.put(w, "prompt", "k", None)
    with pytest.raises(RuntimeError, match="^bad-request: type must not be empty"):
        await tg_client.put(w, "", "k", "v")
    assert await tg_client.get_all(w) == {}, "failed writes wrote nothing"


# --- one store, two protocols ------------------------------------------------------------------------


async def test_writes_through_either_protocol_share_versions_views_and_history(
        tg: TrustGraphDeployment, tg_client: AsyncConfigClient, tmp_path: Path, unique: str):
    w = f"w{unique}"
    async with ConfigClient(tg.settings, actor="ops") as native:
        view = LocalView(tg.settings, tmp_path / "local-view")
        await view.start()
        try:
            await tg_client.put(w, "prompt", "a", "from trustgraph")
            version = await native.put(w, "prompt", "b", "from eventconfig")
            await tg_client.delete(w, "prompt", "gone")

            assert await native.get(w, "prompt", "a", min_version=version) == "from trustgraph"
            assert await tg_client.get(w, "prompt", "b") == "from eventconfig"
            assert (await native.get_all_versioned(w)).version == version + 1, "one version sequence for both"
            assert (await tg_client.request(ConfigRequest(operation="config", workspace=w))).version == version + 1
            await eventually(lambda: view.version >= version + 1, "the local view applies every write")
            assert view.get_values(w, "prompt") == {"a": "from trustgraph", "b": "from eventconfig"}
        finally:
            await view.stop()

    async with HistoryReader(tg.settings) as history:
        mutations = [m async for m in history.read(HistoryQuery(workspace=w))]
    assert [(m.version, m.actor, m.operation) for m in mutations] == [
        (version - 1, f"trustgraph:{tg.topicspace}", "put"), (version, "ops", "put"),
        (version + 1, f"trustgraph:{tg.topicspace}", "delete")]
    assert mutations[0].request_id.startswith(f"tg:{tg.topicspace}:w:")


async def test_trustgraph_pushes_come_once_per_write_after_it_committed(
        tg: TrustGraphDeployment, tg_client: AsyncConfigClient, unique: str):
    w, w2, acme = f"w{unique}", f"v{unique}", f"acme{unique}"
    async with ConfigClient(tg.settings) as native:
        start = await native.version()
        await tg_client.put_many(w, [("prompt", "a", "1"), ("flow", "f", "2")])
        await tg_client.put("__template__", "prompt", "a", "reserved only: no push")
        await tg_client.put("__workspaces__", "workspace", acme, '{"enabled": true}')
        last = await native.put_many(w2, [("prompt", "b", "3")])

    async def ours() -> list[dict[str, Any]] | None:
        pushes = [json.loads(r.value) for r in await read_all(tg.settings, tg.topics.notify)]
        return [p for p in pushes if p["version"] > start] if pushes and pushes[-1]["version"] >= last else None

    assert await eventually(ours, f"a TrustGraph push for version {last}") == [
        {"version": start + 1, "changes": {"flow": [w], "prompt": [w]}, "workspace_changes": None},
        {"version": start + 3, "changes": {}, "workspace_changes": {"created": [acme], "deleted": []}},
        {"version": start + 4, "changes": {"prompt": [w2]}, "workspace_changes": None}]
    records = await read_all(tg.settings, tg.topics.notify)
    assert all(r.headers == () for r in records), "pushes carry no headers"
    assert len(await read_all(tg.settings, tg.topics.notify, committed=True)) == len(records), "none aborted"


async def test_answers_are_committed_records_with_only_the_id_header(tg: TrustGraphDeployment,
                                                                     tg_client: AsyncConfigClient):
    await tg_client.put("w", "prompt", "a", "1")
    answers = await read_all(tg.settings, tg.topics.response)
    committed = await read_all(tg.settings, tg.topics.response, committed=True)
    assert answers and [r.offset for r in answers] == [r.offset for r in committed], "no aborted answer to read"
    assert all([name for name, _ in r.headers] == ["id"] for r in answers)


async def test_undecodable_requests_go_to_the_dlq_and_are_answered_with_an_id(
        tg: TrustGraphDeployment, tg_client: AsyncConfigClient, unique: str):
    bad, extra, no_id = f"bad-{unique}", f"extra-{unique}", f'{{"operation": "put", "workspace": "{unique}"}}'.encode()
    producer = AIOKafkaProducer(bootstrap_servers=tg.settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(tg.topics.request, b"{not json", headers=[("id", bad.encode())])
        await producer.send_and_wait(tg.topics.request, no_id, headers=[])
        await producer.send_and_wait(tg.topics.request, b'{"operation": "config", "workspace": "w", "later": [1]}',
                                     headers=[("id", extra.encode())])
    finally:
        await producer.stop()

    async def answers() -> dict[str, Any] | None:
        found = {dict(r.headers)["id"].decode(): json.loads(r.value)
                 for r in await read_all(tg.settings, tg.topics.response)}
        return found if {bad, extra} <= found.keys() else None

    found = await eventually(answers, "answers to the undecodable and the extended request")
    assert found[bad]["error"]["type"] == "config-error"
    assert found[bad]["error"]["message"].startswith("undecodable TrustGraph request: not JSON")
    assert found[extra]["error"] is None, "unknown keys are ignored, as TrustGraph's decoder does"

    async def dead_letters() -> list[ConsumerRecord] | None:
        records = await read_all(tg.settings, tg.settings.topics.dlq, committed=True)
        ours = [r for r in records if r.value == no_id or dict(r.headers).get("id") == bad.encode()]
        return ours if len(ours) == 2 else None

    dead = await eventually(dead_letters, "both records on the DLQ")
    assert [(r.value, dict(r.headers)["error-type"]) for r in dead] == [
        (b"{not json", b"TrustGraphDecodeError"), (no_id, b"MissingId")]
    assert dict(dead[0].headers)["source-topic"] == tg.topics.request.encode()


async def test_requests_sent_while_serve_is_down_are_answered_once_after_a_restart(
        settings: Settings, tmp_path: Path, unique: str):
    topicspace = f"tg{unique}"
    async with serving(settings, tmp_path, topicspace, "--trustgraph-topicspace", topicspace) as first:
        client = await first.client()
        await client.put("w", "prompt", "a", "1")
        before = (await client.request(ConfigRequest(operation="config", workspace="w"))).version
    try:
        sent = len(await read_all(settings, first.topics.request))
        pending = asyncio.create_task(client.put("w", "prompt", "a", "sent while down", timeout=60))
        await eventually(lambda: _more_than(read_all(settings, first.topics.request), sent),
                         "the request is on TrustGraph's request topic while serve is down")
        async with serving(settings, tmp_path, topicspace, "--trustgraph-topicspace", topicspace):
            await asyncio.wait_for(pending, 60)
            after = await client.request(ConfigRequest(operation="config", workspace="w"))
            assert after.config == {"prompt": {"a": "sent while down"}}
            assert after.version == before + 1, "forwarded exactly once"
    finally:
        await client.close()


async def _more_than(records: Awaitable[list[ConsumerRecord]], count: int) -> bool:
    return len(await records) > count


# --- topics ------------------------------------------------------------------------------------------


async def test_serve_creates_the_trustgraph_topics_with_trustgraphs_layout(tg: TrustGraphDeployment):
    names = [tg.topics.request, tg.topics.response, tg.topics.notify]
    async with admin_client(tg.settings) as admin:
        described = {t["topic"]: t for t in await admin.describe_topics(names)}
        configs = await topic_configs(admin, names)
    assert {name: len(described[name]["partitions"]) for name in names} == dict.fromkeys(names, 1)
    assert {name: configs[name]["retention.ms"] for name in names} == dict.fromkeys(names, "300000")


async def test_a_topic_layout_the_front_end_cannot_serve_stops_serve_with_one_line(
        settings: Settings, topics: None, tmp_path: Path, unique: str):
    from aiokafka.admin import NewTopic

    topicspace = f"tg{unique}"
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(f"{topicspace}.request.config", 2, 1)])
    log = tmp_path / "serve.log"
    process = start_process(settings, "serve", tmp_path / "data", log, "--trustgraph-topicspace", topicspace)
    assert process.wait(60) == 1
    output = log.read_text()
    assert f"error: topic {topicspace}.request.config (the TrustGraph request topic) has 2 partitions" in output
    assert "Traceback" not in output


# --- a TrustGraph processor --------------------------------------------------------------------------


class PromptFollower(WorkspaceProcessor):
    """A minimal TrustGraph processor: follows the ``prompt`` type and the workspace lifecycle."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.calls: list[tuple[str, dict[str, dict[str, str]], int]] = []
        self.created: list[str] = []
        self.register_config_handler(self.on_prompts, types=["prompt"])

    async def on_prompts(self, workspace: str, config: dict[str, dict[str, str]], version: int) -> None:
        self.calls.append((workspace, config, version))

    async def on_workspace_created(self, workspace: str) -> None:
        self.created.append(workspace)


async def delete_topics(settings: Settings, names: list[str]) -> None:
    """Remove earlier runs' topics, so a processor's notify consumer (reading from the earliest) sees only ours."""
    async with admin_client(settings) as admin:
        present = [t["topic"] for t in await admin.describe_topics(names) if t["error_code"] == 0]
        if present:
            await admin.delete_topics(present)

    await eventually(lambda: _none_exist(settings, names), f"topics {names} are deleted", timeout=30)


async def _none_exist(settings: Settings, names: list[str]) -> bool:
    async with admin_client(settings) as admin:
        return all(t["error_code"] != 0 for t in await admin.describe_topics(names))


async def test_a_trustgraph_processor_follows_config_written_through_either_protocol(
        settings: Settings, topics: None, tmp_path: Path):
    await delete_topics(settings, ["tg.request.config", "tg.response.config", "tg.notify.config"])
    async with serving(settings, tmp_path, "tg", "--trustgraph") as tg:
        client = await tg.client()
        async with ConfigClient(settings) as native:
            await client.put("w1", "prompt", "a", "1")
            await native.put("w2", "prompt", "b", "2")
            await client.put("_hidden", "prompt", "x", "reserved")
            await client.put("w1", "flow", "f", "not a prompt")
            await client.put("__workspaces__", "workspace", "acme", '{"enabled": true}')
            at_start = await native.version()

            processor = PromptFollower(id=f"follower-{tg.settings.topic_prefix}", pubsub_backend="kafka",
                                       kafka_bootstrap_servers=settings.bootstrap_servers, config_timeout=10)
            await processor.start()
            try:
                assert ("w1", {"prompt": {"a": "1"}}, at_start) in processor.calls
                assert ("w2", {"prompt": {"b": "2"}}, at_start) in processor.calls
                assert processor.created == ["acme"]

                await client.put("w1", "prompt", "a", "changed by trustgraph")
                by_native = await native.put("w2", "prompt", "c", "added by eventconfig")
                await client.put("_hidden", "prompt", "x", "still reserved")
                await native.put("__workspaces__", "workspace", "beta", '{"enabled": true}')

                await eventually(lambda: ("w2", {"prompt": {"b": "2", "c": "added by eventconfig"}}, by_native)
                                 in processor.calls, "the handler gets eventconfig's write with its version")
                assert ("w1", {"prompt": {"a": "changed by trustgraph"}}, by_native - 1) in processor.calls
                await eventually(lambda: processor.created == ["acme", "beta"], "the workspace handler sees beta")
                assert not [c for c in processor.calls if c[0].startswith("_")], "never a reserved workspace"
                await eventually(lambda: processor.config_version == by_native + 2,
                                 "the processor reaches the last version")
            finally:
                await processor.stop()
        await client.close()


# --- migration ---------------------------------------------------------------------------------------


async def run(*command: str) -> tuple[int, str]:
    """A command as a subprocess, without blocking the event loop (clients and services run in it)."""
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def test_a_deployment_moves_with_the_dump_script_and_one_import(
        tg: TrustGraphDeployment, tg_client: AsyncConfigClient, settings: Settings, topics: None, tmp_path: Path,
        unique: str):
    """The example dump script reads a TrustGraph config service (here: the shared deployment's front
    end); ``eventconfig import`` writes the dump into a fresh deployment, one version per workspace."""
    acme = f"acme{unique}"
    await tg_client.put("__template__", "prompt", "system", "t")
    await tg_client.put_many(acme, [("prompt", "system", "a"), ("flow", "f", "{}")])
    await tg_client.put("__workspaces__", "workspace", acme, "{}")
    dump = tmp_path / "dump.json"
    code, output = await run(sys.executable, str(Path(__file__).parents[2] / "examples" / "trustgraph_dump.py"),
                             "--bootstrap-servers", tg.settings.bootstrap_servers, "--topicspace", tg.topicspace,
                             "-o", str(dump))
    assert code == 0, output
    dumped = json.loads(dump.read_text())
    async with ConfigClient(tg.settings) as source:
        registered = await source.keys("__workspaces__", "workspace")
        held = {ws: await source.get_all(ws) for ws in {*registered, "__template__", "__workspaces__"}}
    assert dumped == {ws: config for ws, config in held.items() if config}, "the dump holds what TrustGraph sees"
    assert dumped[acme] == {"prompt": {"system": "a"}, "flow": {"f": "{}"}}

    service = ConfigService(settings)  # the deployment moved to: this test's own, empty
    await service.start()
    try:
        await service.writer.wait_active(60)
        code, output = await run(sys.executable, "-m", "eventconfig", "--bootstrap-servers", settings.bootstrap_servers,
                                 "--topic-prefix", settings.topic_prefix, "import", "-i", str(dump))
        assert code == 0, output
        async with ConfigClient(settings) as target:
            assert {ws: await target.get_all(ws) for ws in dumped} == dumped
            assert await target.version() == len(dumped), "one version per workspace"
    finally:
        await service.stop()


async def test_an_invalid_value_reaches_trustgraphs_client_as_an_error_and_writes_nothing(
        tg_client: AsyncConfigClient, unique: str):
    w, prompt = f"w{unique}", f"prompt{unique}"
    await tg_client.put("__schemas__", prompt, "*", '{"type": "object", "required": ["text"]}')
    with pytest.raises(RuntimeError, match=rf"^invalid-value: {prompt}/bad at \$: 'text' is a required property"):
        await tg_client.put_many(w, [(prompt, "good", '{"text": "t"}'), (prompt, "bad", "{}")])
    assert await tg_client.get_all(w) == {}, "nothing of the refused put was written"
    await tg_client.put(w, prompt, "good", '{"text": "t"}')
    assert await tg_client.get_all(w) == {prompt: {"good": '{"text": "t"}'}}

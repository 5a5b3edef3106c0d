"""The bootstrapper against the real broker (docs/design.md §8, docs/compatibility.md behaviours 57–65).

A fresh deployment converges from nothing with one `eventconfig bootstrap` process; later runs skip
everything; a flag bump re-runs exactly one initialiser; failures retry without blocking others; the
gate holds post-gate initialisers until the service answers; a dangerous topic layout keeps failing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from aiokafka.admin import NewTopic

from eventconfig.bootstrap import (STATE_TYPE, STATE_WORKSPACE, Bootstrapper, Cadence, Configured, Flag, InitContext,
                                   Initialiser)
from eventconfig.bootstrap.initialisers import TEMPLATE_WORKSPACE, KafkaTopology
from eventconfig.client import ConfigClient
from eventconfig.kafka.topics import admin_client, check_topics, create_topics
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE
from eventconfig.process import ConfigService
from eventconfig.settings import Settings

pytestmark = pytest.mark.integration
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
THIRD_PARTY = REPO / "examples" / "thirdparty"
CORE = "eventconfig.bootstrap.initialisers"
FAST = Cadence(gate_down=0.2, converging=0.2, steady=60, gate_timeout=3)


class Recorder(Initialiser):
    """Records the flags of each run; fails its first ``fail_times`` runs."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[tuple[Flag | None, Flag]] = []
        self.fail_times = fail_times

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        self.calls.append((old_flag, new_flag))
        if len(self.calls) <= self.fail_times:
            raise RuntimeError("flaky dependency")


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[ConfigService]:
    service = ConfigService(settings)
    await service.start()
    await service.writer.wait_active(60)
    try:
        yield service
    finally:
        await service.stop()


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """The first truthy result of ``check``, polled until ``timeout`` (errors count as not yet)."""
    deadline = asyncio.get_running_loop().time() + timeout
    result: T | None = None
    while True:
        try:
            result = await check()
            if result:
                return result
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s: last result {result!r}")
        await asyncio.sleep(0.1)


def write_seed(tmp_path: Path, tree: dict[str, Any]) -> str:
    path = tmp_path / "template-seed.json"
    path.write_text(json.dumps(tree))
    return str(path)


def core(cls: str, name: str, flag: Flag = "v1", **params: Any) -> dict[str, Any]:
    return {"class": f"{CORE}.{cls}", "name": name, "flag": flag, "params": params}


async def topics_ready(settings: Settings) -> bool:
    async with admin_client(settings) as admin:
        await check_topics(admin, settings)
    return True


async def run_cli(settings: Settings, *args: str, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "EVENTCONFIG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "EVENTCONFIG_TOPIC_PREFIX": settings.topic_prefix,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(THIRD_PARTY), os.environ.get("PYTHONPATH")]))}
    # Logs go to a file: a full stderr pipe would block the process we are waiting for.
    with log.open("ab") as stderr:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "eventconfig", "bootstrap", *args, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=stderr)


async def test_a_fresh_cluster_converges_from_nothing_with_one_process_and_a_second_run_skips_everything(
        settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "bootstrap.yaml"
    config.write_text(yaml.safe_dump({"initialisers": [
        core("KafkaTopology", "kafka-topology"),
        core("TemplateSeed", "template-seed", config_file=write_seed(tmp_path, {"prompt": {"system": "hi"},
                                                                                 "flow": {"rag": {"steps": 3}}})),
        core("WorkspaceInit", "workspace-acme", workspace="acme"),
        {"class": "acme_init.AcmeFeatureFlags", "name": "acme-flags", "flag": "2026-01",
         "params": {"workspace": "acme", "flags": {"new-search": True}}},
    ]}))
    log = tmp_path / "bootstrap.log"
    process = await run_cli(settings, "-c", str(config), "--gate-backoff", "0.2", "--retry-interval", "0.2",
                            "--steady-interval", "60", "--gate-timeout", "1", log=log)
    try:
        await eventually(lambda: topics_ready(settings), 60)  # KafkaTopology ran, with no service anywhere
        await eventually(lambda: _logged(log, "held=template-seed,workspace-acme,acme-flags"))
        async with running_service(settings), ConfigClient(settings, timeout=10) as client:
            tracked = ["acme-flags", "template-seed", "workspace-acme"]  # pre-gate kafka-topology is not stored
            await eventually(lambda: _equal(client.keys(STATE_WORKSPACE, STATE_TYPE), tracked))
            template = {"prompt": {"system": "hi"}, "flow": {"rag": '{"steps": 3}'}}
            assert await client.get_all(TEMPLATE_WORKSPACE) == template
            assert await client.get_all("acme") == {**template, "feature": {"new-search": "true"}}
            assert await client.get(WORKSPACES_WORKSPACE, WORKSPACE_TYPE, "acme") == '{"enabled": true}'
            assert await client.get_values(STATE_WORKSPACE, STATE_TYPE) == {
                "acme-flags": '"2026-01"', "template-seed": '"v1"', "workspace-acme": '"v1"'}
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 20) == 0, log.read_text()
            version = await client.version()

            second = await run_cli(settings, "-c", str(config), "--once", log=log)
            out, _ = await asyncio.wait_for(second.communicate(), 60)
            assert second.returncode == 0, log.read_text()
            rows = [line.split(None, 2) for line in out.decode().splitlines()]
            assert [(name, status) for name, status, _ in rows] == [
                ("kafka-topology", "ran"), ("template-seed", "skipped"), ("workspace-acme", "skipped"),
                ("acme-flags", "skipped")]
            assert await client.version() == version, "the second run wrote nothing at all"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = log.read_text()
    assert "topics created" in text and "nothing created" in text, "the second process only checked the topics"


async def _equal(value: Awaitable[T], wanted: T) -> bool:
    return await value == wanted


async def _logged(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


async def test_a_flag_bump_reruns_exactly_that_initialiser_with_old_and_new_flags(service, tmp_path: Path) -> None:
    settings = service.settings
    seed = write_seed(tmp_path, {"prompt": {"system": "hi"}})
    watcher = Recorder()
    first = await Bootstrapper(settings, [core("TemplateSeed", "tpl", config_file=seed),
                                          core("WorkspaceInit", "ws"), Configured("watch", 1, watcher)],
                               cadence=FAST).run_once()
    assert first.ran == ["tpl", "ws", "watch"]
    async with ConfigClient(settings) as client:
        await client.put(TEMPLATE_WORKSPACE, "prompt", "system", "edited by ops")
        write_seed(tmp_path, {"prompt": {"system": "hi", "new": "n"}})
        bumped = await Bootstrapper(settings, [core("TemplateSeed", "tpl", "v2", config_file=seed),
                                               core("WorkspaceInit", "ws"), Configured("watch", 1, Recorder())],
                                    cadence=FAST).run_once()
        assert (bumped.ran, bumped.skipped) == (["tpl"], ["ws", "watch"])
        assert (bumped["tpl"].old_flag, bumped["tpl"].new_flag) == ("v1", "v2")
        assert await client.get_all(TEMPLATE_WORKSPACE) == {"prompt": {"system": "edited by ops", "new": "n"}}
        assert await client.get(STATE_WORKSPACE, STATE_TYPE, "tpl") == '"v2"'
        assert await client.get_all("default") == {"prompt": {"system": "hi"}}, "ws did not re-run"
        numbered = await Bootstrapper(settings, [Configured("watch", 2, watcher)], cadence=FAST).run_once()
        assert numbered.ran == ["watch"] and watcher.calls == [(None, 1), (1, 2)]


async def test_a_failing_initialiser_retries_while_the_others_complete(service, tmp_path: Path) -> None:
    settings = service.settings
    flaky, last = Recorder(fail_times=1), Recorder()
    entries = [core("WorkspaceInit", "ws"),  # before its template on purpose: fails until it exists
               core("TemplateSeed", "tpl", config_file=write_seed(tmp_path, {"prompt": {"system": "hi"}})),
               Configured("flaky", "v1", flaky), Configured("last", "v1", last)]
    boot = Bootstrapper(settings, entries, cadence=FAST)
    first = await boot.run_once()
    assert (first.failed, first.ran, first.sleep) == (["ws", "flaky"], ["tpl", "last"], FAST.converging)
    assert first["ws"].reason == "InitialiserError: Template workspace is empty — has TemplateSeed run yet?"
    async with ConfigClient(settings) as client:
        assert await client.keys(STATE_WORKSPACE, STATE_TYPE) == ["last", "tpl"], "no flag for a failure"
        second = await boot.run_once()
        assert (second.ran, second.skipped) == (["ws", "flaky"], ["tpl", "last"])
        assert await client.get_all("default") == {"prompt": {"system": "hi"}}
        third = await boot.run_once()
        assert (third.skipped, third.sleep) == (["ws", "tpl", "flaky", "last"], FAST.steady)
        version = await client.version()
        again = await Bootstrapper(settings, entries, cadence=FAST).run_once()
        assert again.skipped == ["ws", "tpl", "flaky", "last"] and await client.version() == version
    assert flaky.calls == [(None, "v1"), (None, "v1")] and last.calls == [(None, "v1")]


async def test_the_gate_holds_post_gate_initialisers_until_the_service_answers(settings: Settings,
                                                                               tmp_path: Path) -> None:
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    entries = [core("TemplateSeed", "tpl", config_file=write_seed(tmp_path, {"prompt": {"system": "hi"}})),
               Configured("topology", "v1", KafkaTopology())]
    boot = Bootstrapper(settings, entries, cadence=Cadence(gate_down=0.2, converging=0.2, gate_timeout=1.5))
    down = await boot.run_once()
    assert (down.gate, down.ran, down.held, down.sleep) == (False, ["topology"], ["tpl"], 0.2)
    assert down.gate_error == "no answer within 1.5 s; is the config service running?"
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps({"initialisers": entries[:1]}))
    once = await run_cli(settings, "-c", str(config), "--once", "--gate-timeout", "1", log=tmp_path / "once.log")
    out, _ = await asyncio.wait_for(once.communicate(), 60)
    assert once.returncode == 1, "--once exits 1 while anything is held back or failing"
    assert out.decode().split(None, 2)[:2] == ["tpl", "held"]
    async with running_service(settings), ConfigClient(settings) as client:
        up = await boot.run_once()
        assert (up.gate, up.ran, up.skipped) == (True, ["tpl"], ["topology"])
        assert await client.get_all(TEMPLATE_WORKSPACE) == {"prompt": {"system": "hi"}}


async def test_kafka_topology_refuses_a_multi_partition_log_on_every_wake(settings: Settings) -> None:
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(settings.topics.log, 2, 1, topic_configs={"cleanup.policy": "compact"})])
    boot = Bootstrapper(settings, [core("KafkaTopology", "topology")], cadence=FAST)
    for _ in range(2):
        report = await boot.run_once()
        assert report.failed == ["topology"] and report.gate is None
        assert "TopologyError" in report["topology"].reason and "has 2 partitions" in report["topology"].reason


async def test_template_seed_and_workspace_init_write_one_version_each(service, tmp_path: Path) -> None:
    settings = service.settings
    seed = write_seed(tmp_path, {"t": {"k": {"a": 1}}, "u": {"x": "y"}})
    async with ConfigClient(settings) as client:
        start = await client.version()
        boot = Bootstrapper(settings, [core("TemplateSeed", "tpl", config_file=seed)], cadence=FAST)
        assert (await boot.run_once()).ran == ["tpl"]
        assert await client.version() == start + 2, "one put of every entry, one flag write"
        assert await client.get(TEMPLATE_WORKSPACE, "t", "k") == '{"a": 1}'
        boot = Bootstrapper(settings, [core("WorkspaceInit", "ws", workspace="w1")], cadence=FAST)
        assert (await boot.run_once()).ran == ["ws"]
        assert await client.version() == start + 5, "one copy, one registration, one flag write"
        items = await client.get_many("w1", [("t", "k"), ("u", "x")])
        assert {i.version for i in items} == {start + 3}, "every type and key copied in the same put"

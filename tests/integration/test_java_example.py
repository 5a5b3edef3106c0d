"""The Java example (examples/java, docs/other-languages.md) against the session's real broker.

The example was written from docs/design.md alone; here it must agree with the Python side on the
same deployment: its materialized log with ``eventconfig dump``, ``eventconfig state`` and a
``LocalView``; its history with ``eventconfig history``; its pokes with the notify topic; its put
and get with the Python client, both ways. The jar is built once per session with Maven (offline
when the local repository already has everything); without Maven or a JDK the tests fail, they are
never skipped: CI has both (.ci/run checks them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aiokafka import AIOKafkaProducer

from eventconfig.client import ConfigClient, LocalView
from eventconfig.codec import default_codec
from eventconfig.kafka.reading import read_whole
from eventconfig.kafka.records import OutRecord
from eventconfig.logrecords import delete_record, marker_record, put_record
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # the first build may download Maven Central

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "java"
BUILD_DEADLINE_S = 540  # a first build downloads the dependencies; later ones run offline in seconds
JAVA_DEADLINE_S = 90
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"  # short-lived JVMs start fastest with these


@pytest.fixture(scope="session")
def java_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs the example's jar, built once per session into a folder of its own."""
    missing = [tool for tool in ("mvn", "java") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the Java example needs {' and '.join(missing)} on PATH (Maven and a JDK 17 or later; "
                    "Debian: apt-get install maven openjdk-17-jdk-headless)", pytrace=False)
    build = tmp_path_factory.mktemp("java-example")
    command = ["mvn", "-q", "-B", "-f", str(EXAMPLE / "pom.xml"), f"-Dexample.build.dir={build}", "package"]
    # Maven is a short-lived JVM too: these flags make the build about three times faster on a busy machine.
    env = {**os.environ, "MAVEN_OPTS": f"{os.environ.get('MAVEN_OPTS', '')} {QUICK_JVM}".strip()}
    result = subprocess.run([*command[:3], "-o", *command[3:]], capture_output=True, text=True, env=env,
                            timeout=BUILD_DEADLINE_S, stdin=subprocess.DEVNULL)
    if result.returncode != 0:  # the first build on this machine: resolve from Maven Central
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=BUILD_DEADLINE_S,
                                stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        pytest.fail(f"building examples/java failed (exit {result.returncode}):\n{result.stdout[-4000:]}"
                    f"{result.stderr[-4000:]}", pytrace=False)
    return ["java", *QUICK_JVM.split(), "-jar", str(build / "eventconfig-example.jar")]


class Java:
    """Runs the example's commands on this test's deployment."""

    def __init__(self, command: list[str], settings: Settings) -> None:
        self.command = command
        self.options = ["--bootstrap-servers", settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix]

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*self.command, *args, *self.options,
                                                    stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def run(self, *args: str, code: int = 0) -> tuple[str, str]:
        """(stdout, stderr) of a command that must exit with ``code``."""
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), JAVA_DEADLINE_S)
        assert proc.returncode == code, f"java {args[0]} exited {proc.returncode}:\n{err.decode()}"
        return out.decode(), err.decode()

    async def json(self, *args: str, code: int = 0) -> Any:
        return json.loads((await self.run(*args, code=code))[0])

    async def json_lines(self, *args: str) -> list[Any]:
        return [json.loads(line) for line in (await self.run(*args))[0].splitlines()]


@pytest.fixture
def java(java_example: list[str], settings: Settings) -> Java:
    return Java(java_example, settings)


async def eventconfig(settings: Settings, *args: str) -> str:
    """Stdout of the ``eventconfig`` command on this test's deployment, which must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTCONFIG_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventconfig", "--bootstrap-servers", settings.bootstrap_servers,
        "--topic-prefix", settings.topic_prefix, "--log-level", "warning", *args, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), JAVA_DEADLINE_S)
    assert proc.returncode == 0, f"eventconfig {args[0]} exited {proc.returncode}:\n{err.decode()}"
    return out.decode()


async def scripted_writes(client: ConfigClient) -> list[dict[str, Any]]:
    """Puts, deletes, a batch, reserved workspaces, the workspace registry, an empty put; returns the
    pokes they must give (docs/design.md §7)."""
    assert await client.put_many("w1", [("prompt", "a", "ünï😀"), ("prompt", "b", 'x"y\n\t'),
                                        ("flow", "f", "{}")]) == 1
    assert await client.put("w2", "flow", "g", "") == 2
    assert await client.delete_many("w1", [("prompt", "a"), ("prompt", "never-there")]) == 3
    assert await client.put("__template__", "prompt", "t", "template") == 4  # reserved: no poke
    assert await client.put("__workspaces__", "workspace", "w3", "{}") == 5
    assert await client.put_many("w1", []) == 6  # no items: a version without a poke
    assert await client.put_many("w2", [("flow", "g", "again"), ("prompt", "𝄞", "astral key")]) == 7
    assert await client.delete("__workspaces__", "workspace", "w3") == 8
    assert await client.delete("w2", "flow", "g") == 9
    no_workspaces = None
    return [{"version": 1, "changes": {"flow": ["w1"], "prompt": ["w1"]}, "workspace_changes": no_workspaces},
            {"version": 2, "changes": {"flow": ["w2"]}, "workspace_changes": no_workspaces},
            {"version": 3, "changes": {"prompt": ["w1"]}, "workspace_changes": no_workspaces},
            {"version": 5, "changes": {}, "workspace_changes": {"created": ["w3"], "deleted": []}},
            {"version": 7, "changes": {"flow": ["w2"], "prompt": ["w2"]}, "workspace_changes": no_workspaces},
            {"version": 8, "changes": {}, "workspace_changes": {"created": [], "deleted": ["w3"]}},
            {"version": 9, "changes": {"flow": ["w2"]}, "workspace_changes": no_workspaces}]


async def test_the_java_reader_folds_a_hand_written_log_with_strays_exactly_like_a_local_view(
        settings: Settings, topics: None, java: Java, tmp_path: Path) -> None:
    """docs/design.md §4.4 "Reading the log": items wait for a marker, strays are skipped, the version never
    goes back, the tail after the last marker stays out. Written by hand, no service: only the fold is tested."""
    codec = default_codec()
    entry = codec.encode("LogEntry", {"value": "x", "version": 2})
    a, b, c = (ItemKey("w", "t", k) for k in "abc")
    skipped = [OutRecord(b"\x00not a LogKey", entry, []),  # BadMarker
               OutRecord(put_record(b, "", 2).key, None, []),  # a tombstone without its version: b stays
               OutRecord(put_record(b, "", 2).key, None, [("version", b"-2")]),
               OutRecord(put_record(ItemKey("w", "t", "d"), "", 2).key, codec.encode("ConfigPush", {"version": 2}), []),
               OutRecord(put_record(ItemKey("w", "t", "e"), "", 2).key, entry + b"\x00", []),  # trailing bytes
               OutRecord(put_record(ItemKey("w", "t", "f"), "", 2).key, b"\xc3\x01" + b"\xff" * 8 + entry[10:], []),
               put_record(ItemKey("w", "", "g"), "empty type", 2)]
    records = [put_record(a, "1", 1), put_record(b, "2", 1), marker_record(1),
               delete_record(a, 2), put_record(c, "3", 2), *skipped, marker_record(2),
               put_record(c, "3b", 3), put_record(c, "3c", 3), marker_record(3),
               marker_record(1)]  # a stray lower marker: the version stays 3
    tail = put_record(ItemKey("w", "t", "tail"), "no marker yet", 4)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(settings.topics.log, record.value, key=record.key, headers=record.headers)
        view = LocalView(settings, tmp_path / "local-view")
        await view.start(timeout=60)
        try:
            assert (view.version, view.get_all("w")) == (3, {"t": {"b": "2", "c": "3c"}})
            assert [view.get_item(*item) for item in (b, c)] == [Entry("2", 1), Entry("3c", 3)]
        finally:
            await view.stop()
        # Items after the last marker are no complete version yet. (Before the view started, such a tail
        # would keep LocalView.start from catching up: its position waits at the marker.)
        await producer.send_and_wait(settings.topics.log, tail.value, key=tail.key, headers=tail.headers)
    finally:
        await producer.stop()

    out, err = await java.run("state", "--versions")
    assert json.loads(out) == {"version": 3, "config": {"w": {"t": {"b": {"value": "2", "version": 1},
                                                                    "c": {"value": "3c", "version": 3}}}}}
    assert err.count("warning: skipped log record") == len(skipped), err


async def test_the_java_reader_agrees_with_dump_state_history_pokes_and_a_local_view(
        service, settings: Settings, java: Java, tmp_path: Path) -> None:
    async with ConfigClient(settings, timeout=30, actor="scripted") as client:
        pokes = await scripted_writes(client)

    # The reads are independent: run them together (each command waits for its own condition).
    state, history, java_pokes, *python = await asyncio.gather(
        java.json("state", "--min-version", "9", "--versions"),
        java.json_lines("history"),  # exit 0: the hash chain holds (§14.3), non-ASCII values too
        java.json_lines("pokes", "--from-beginning", "--count", str(len(pokes))),
        eventconfig(settings, "state", "--at-version", "9", "--format", "json"),
        eventconfig(settings, "history", "--format", "jsonl"),
        *(eventconfig(settings, "dump", "-w", w) for w in ("w1", "w2", "__template__")))
    assert state["version"] == 9
    config = {w: {t: {k: e["value"] for k, e in kv.items()} for t, kv in types.items()}
              for w, types in state["config"].items()}
    assert config == {"w1": {"flow": {"f": "{}"}, "prompt": {"b": 'x"y\n\t'}},
                      "w2": {"prompt": {"𝄞": "astral key"}},
                      "__template__": {"prompt": {"t": "template"}}}, "the scripted writes, materialized"
    assert {w: {t: {k: e["version"] for k, e in kv.items()} for t, kv in types.items()}
            for w, types in state["config"].items()} == {"w1": {"flow": {"f": 1}, "prompt": {"b": 1}},
                                                         "w2": {"prompt": {"𝄞": 7}},
                                                         "__template__": {"prompt": {"t": 4}}}
    replayed, listed, *dumps = python
    assert json.loads(replayed) == config
    assert [json.loads(d) for d in dumps] == [config["w1"], config["w2"], config["__template__"]]

    assert len(history) == 9 and history == [json.loads(line) for line in listed.splitlines()]
    assert history[2]["changes"] == [{"type": "prompt", "key": "a", "previous": "ünï😀", "value": None},
                                     {"type": "prompt", "key": "never-there", "previous": None, "value": None}]

    codec = default_codec()
    notify = [codec.decode("ConfigPush", r.value) for r in await read_whole(settings, settings.topics.notify)]
    assert java_pokes == notify, "the Java reader decodes every field of every poke (items too, §7)"
    assert [{k: p[k] for k in ("version", "changes", "workspace_changes")} for p in notify] == pokes

    view = LocalView(settings, tmp_path / "local-view")
    await view.start(timeout=60)
    try:
        assert view.version == 9
        for workspace, types in state["config"].items():
            assert view.get_all(workspace) == config[workspace]
            for type_, keys in types.items():
                for key, entry in keys.items():
                    assert view.get_item(workspace, type_, key) == Entry(entry["value"], entry["version"])
    finally:
        await view.stop()


async def test_the_java_client_writes_and_reads_through_its_reply_partition_and_follows_pokes(
        service, settings: Settings, java: Java) -> None:
    follower = await java.start("pokes", "--count", "2")
    assert follower.stderr is not None and follower.stdout is not None
    line = await asyncio.wait_for(follower.stderr.readline(), JAVA_DEADLINE_S)
    assert b"following" in line, line  # positioned at the notify topic's end: later pokes are printed
    try:
        async with ConfigClient(settings, timeout=30, actor="python") as client:
            put, notes = await java.run("put", "-w", "wj", "-t", "flow", "-k", "k", "-v", "java ☕",
                                        "--actor", "java-example", "--reply-partition", "3")
            answer = json.loads(put)
            assert answer["error"] is None and answer["version"] == 1
            item = await client.get_item("wj", "flow", "k")
            assert item is not None and (item.value, item.version) == ("java ☕", 1), "the Java put is visible"

            version = await client.put("wj", "flow", "p", "from python")
            got = await java.json("get", "-w", "wj", "-t", "flow", "-k", "p", "--min-version", str(version))
            assert got["version"] == version
            assert [(v["key"], v["value"], v["version"]) for v in got["values"]] == [("p", "from python", version)]

            missing, (refused, error) = await asyncio.gather(
                java.json("get", "-w", "wj", "-t", "flow", "-k", "nothing"),
                java.run("put", "-w", "wj", "-t", "flow", "-k", "k", "-v", "x", "--if-version", "7", code=1))
            assert [(v["value"], v["version"]) for v in missing["values"]] == [(None, None)]
            assert json.loads(refused)["error"]["type"] == "conflict"
            assert error.splitlines()[-1] == "error: conflict: flow/k is at version 1, expected 7"

        out, _ = await asyncio.wait_for(follower.communicate(), JAVA_DEADLINE_S)
        assert follower.returncode == 0
        followed = [json.loads(p) for p in out.decode().splitlines()]
        assert [(p["version"], p["changes"], p["workspace_changes"]) for p in followed] == [
            (v, {"flow": ["wj"]}, None) for v in (1, 2)]
        assert [[(i["key"], i["value"]) for i in p["items"]] for p in followed] == [
            [("k", "java ☕")], [("p", "from python")]], "pokes carry their items (§7)"
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()

    # The answer went to the partition the request named (the only one the Java client read), and the
    # history names the Java actor.
    [request_id] = re.findall(r"^request (\S+) answered on ", notes, re.MULTILINE)
    answers, listed = await asyncio.gather(read_whole(settings, settings.topics.response, 3),
                                           eventconfig(settings, "history", "--to-version", "1", "--format", "jsonl"))
    assert request_id in [r.key.decode() for r in answers]
    [first] = [json.loads(line) for line in listed.splitlines()]
    assert (first["actor"], first["workspace"], first["changes"]) == (
        "java-example", "wj", [{"type": "flow", "key": "k", "previous": None, "value": "java ☕"}])

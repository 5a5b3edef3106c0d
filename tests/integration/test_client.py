"""ConfigClient and the config CLI against the real service and broker (docs/design.md §4, §5;
docs/compatibility.md behaviours 49–55).

Every test except the no-service ones uses the ``service`` fixture (tests/conftest.py): it creates the
topics of the ``settings`` fixture and runs the whole service in-process until the test ends. The CLI
runs as a subprocess, so the in-process service keeps the event loop while the command waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from eventconfig.client import ClientError, ConfigClient, ConfigItem
from eventconfig.errors import BadOperation, BadRequest, Conflict, ReadTimeout, TopologyError
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(settings: Settings, service: object):
    async with ConfigClient(settings, timeout=30, actor="tester") as c:
        yield c


async def eventconfig(settings: Settings, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the ``eventconfig`` command for this test's deployment; returns (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTCONFIG_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from eventconfig.cli.main import main; main()",
        "--bootstrap-servers", settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), 90)
    return proc.returncode or 0, out.decode(), err.decode()


async def create_topics_for(settings: Settings) -> None:
    """Create the topics, retrying while they are not yet in the broker's metadata.

    CreateTopics returns once the KRaft controller committed; the broker's metadata cache catches up
    a moment later, so an immediate describe can still say "does not exist".
    """
    async with admin_client(settings) as admin:
        for attempt in range(50):
            try:
                await create_topics(admin, settings)
                return
            except TopologyError as exc:
                if "does not exist" not in str(exc) or attempt == 49:
                    raise
                await asyncio.sleep(0.1)


# --- reads and writes --------------------------------------------------------------------------


async def test_a_fresh_store_is_at_version_0_and_a_missing_key_is_none(client):
    assert await client.version() == 0
    assert await client.get("w", "prompt", "missing") is None
    assert await client.get_item("w", "prompt", "missing") is None
    assert await client.get_all("w") == {}
    assert await client.keys("w", "prompt") == []


async def test_put_then_get_returns_the_value_and_the_version_it_was_written_at(client):
    version = await client.put("w", "prompt", "system", "You are helpful")
    assert version == 1
    assert await client.get("w", "prompt", "system", min_version=version) == "You are helpful"
    assert await client.get_item("w", "prompt", "system") == ConfigItem("w", "prompt", "system",
                                                                        "You are helpful", version)
    assert await client.put("w", "prompt", "system", "again") == 2
    assert await client.get("w", "prompt", "system") == "again"
    assert await client.version() == 2


async def test_put_many_is_one_request_and_one_version_for_n_items(client):
    before = await client.version()
    items = [("processor:a", "v1", '{"x": 1}'), ("processor:b", "v1", "{}"), ("flow", "f1", "def")]
    version = await client.put_many("w", items)
    assert version == before + 1 == await client.version()
    assert await client.get_all("w") == {"processor:a": {"v1": '{"x": 1}'}, "processor:b": {"v1": "{}"},
                                         "flow": {"f1": "def"}}
    assert {i.version for i in await client.get_many("w", [(t, k) for t, k, _ in items])} == {version}
    assert await client.put_many("w", []) == version + 1  # an empty put still advances the version


async def test_delete_and_delete_many_each_advance_the_version_once(client):
    await client.put_many("w", [("t", "a", "1"), ("t", "b", "2"), ("t", "c", "3"), ("u", "d", "4")])
    v = await client.delete("w", "t", "a")
    assert v == 2 and await client.get("w", "t", "a") is None
    assert await client.delete_many("w", [("t", "b"), ("u", "d"), ("t", "never-existed")]) == 3
    assert await client.keys("w", "t") == ["c"]
    assert await client.get_all("w") == {"t": {"c": "3"}}
    assert await client.delete("w", "t", "never-existed") == 4  # missing keys are not an error


async def test_listing_reads_are_sorted_and_scoped(client):
    await client.put_many("w", [("t", "b", "2"), ("t", "a", "1"), ("t", "c", "3"), ("other", "x", "y")])
    await client.put_many("v", [("t", "a", "va")])
    await client.put_many("__template__", [("t", "z", "tz")])
    assert await client.keys("w", "t") == ["a", "b", "c"]
    assert list((await client.get_values("w", "t")).items()) == [("a", "1"), ("b", "2"), ("c", "3")]
    assert await client.get_values("w", "missing-type") == {}
    assert await client.get_values_all_workspaces("t") == [
        ConfigItem("__template__", "t", "z", "tz", 3), ConfigItem("v", "t", "a", "va", 2),
        ConfigItem("w", "t", "a", "1", 1), ConfigItem("w", "t", "b", "2", 1), ConfigItem("w", "t", "c", "3", 1)]
    assert await client.get_keys_all_workspaces("t") == [("__template__", "z"), ("v", "a"), ("w", "a"),
                                                         ("w", "b"), ("w", "c")]
    assert await client.workspaces_for_type("t") == {"__template__", "v", "w"}
    snapshot = await client.get_all_versioned("v")
    assert (snapshot.value, snapshot.version) == ({"t": {"a": "va"}}, 3)


# --- preconditions and errors ------------------------------------------------------------------


async def test_an_if_version_conflict_raises_conflict_and_writes_nothing(client):
    v1 = await client.put("w", "t", "k", "first", if_version=0)
    with pytest.raises(Conflict) as caught:
        await client.put("w", "t", "k", "second", if_version=0)
    assert caught.value.wire_type == "conflict" and "t/k" in caught.value.message
    with pytest.raises(Conflict):  # one failed precondition: none of the items is written
        await client.put_many("w", [("t", "new", "x", 0), ("t", "k", "y", v1 + 5)])
    with pytest.raises(Conflict):
        await client.delete("w", "t", "k", if_version=v1 + 1)
    assert await client.version() == v1
    assert await client.get_all("w") == {"t": {"k": "first"}}
    assert await client.put("w", "t", "k", "second", if_version=v1) == v1 + 1
    assert await client.delete("w", "t", "k", if_version=v1 + 1) == v1 + 2


async def test_errors_raise_typed_exceptions_with_type_and_message(client):
    with pytest.raises(BadRequest) as caught:
        await client.get("", "t", "k")
    assert (caught.value.wire_type, caught.value.message) == ("bad-request", "Workspace is required")
    with pytest.raises(BadRequest, match="Workspace is required"):
        await client.put("", "t", "k", "v")
    with pytest.raises(BadOperation, match="Bad operation"):
        await client.request("frobnicate", "w")
    assert await client.get_values_all_workspaces("t") == []  # all-workspace reads need no workspace
    assert await client.version() == 0  # failed requests never advance the version


async def test_a_min_version_the_service_never_reaches_raises_read_timeout(client):
    with pytest.raises(ReadTimeout) as caught:
        await client.get("w", "t", "k", min_version=1_000)
    assert caught.value.wire_type == "timeout"


async def test_read_your_writes_across_clients_and_concurrent_calls_on_one_client(settings, client):
    async with ConfigClient(settings, timeout=30) as other:
        version = await client.put("w", "t", "k", "v")
        assert await other.get("w", "t", "k", min_version=version) == "v"
    versions = await asyncio.gather(*(client.put("w", "t", f"k{i}", str(i)) for i in range(50)))
    assert sorted(versions) == list(range(version + 1, version + 51))
    assert len(await client.keys("w", "t")) == 51


# --- without a service -------------------------------------------------------------------------


async def test_no_service_means_read_timeout(settings):
    await create_topics_for(settings)
    async with ConfigClient(settings, timeout=1.0) as c:
        with pytest.raises(ReadTimeout, match="no response to 'get' request .* within 1 s"):
            await c.get("w", "t", "k")
        assert c.hub.stats().pending == 0


async def test_missing_topics_are_a_clear_client_error(settings):
    with pytest.raises(ClientError, match="do not exist; run `eventconfig topics create`"):
        async with ConfigClient(settings, timeout=1.0):
            pass


async def test_cli_without_a_service_exits_1_with_a_timeout_error(settings):
    await create_topics_for(settings)
    code, out, err = await eventconfig(settings, "get", "-t", "t", "-k", "k", "--timeout", "1")
    assert code == 1 and out == ""
    assert err.startswith("error: timeout: no response to 'get' request"), err


# --- the CLI -----------------------------------------------------------------------------------


async def test_cli_put_get_list_getvalues_dump_delete(settings, service):
    code, out, err = await eventconfig(settings, "put", "-t", "prompt", "-k", "system", "--value", "Hi [there]")
    assert (code, out) == (0, "Configuration item set: prompt/system (version 1)\n"), err
    code, out, _ = await eventconfig(settings, "put", "-w", "default", "-t", "prompt", "-k", "multi", "--stdin",
                                     stdin="line 1\nline 2\n")
    assert (code, out) == (0, "Configuration item set: prompt/multi (version 2)\n")

    assert await eventconfig(settings, "get", "-t", "prompt", "-k", "system") == (0, "Hi [there]\n", "")
    code, out, _ = await eventconfig(settings, "get", "-t", "prompt", "-k", "multi", "--format", "json",
                                     "--min-version", "2")
    assert (code, json.loads(out)) == (0, "line 1\nline 2\n")
    code, out, err = await eventconfig(settings, "get", "-t", "prompt", "-k", "nope")
    assert (code, out, err.strip()) == (1, "", "error: not found: prompt/nope")

    assert await eventconfig(settings, "list", "-t", "prompt") == (0, "multi\nsystem\n", "")
    code, out, _ = await eventconfig(settings, "list", "-t", "prompt", "--format", "json")
    assert json.loads(out) == ["multi", "system"]
    assert (await eventconfig(settings, "list", "-t", "empty"))[:2] == (0, "")
    code, out, _ = await eventconfig(settings, "getvalues", "-t", "prompt")
    assert out == "multi\tline 1\nline 2\n\nsystem\tHi [there]\n"
    code, out, _ = await eventconfig(settings, "getvalues", "-t", "prompt", "--format", "json")
    assert json.loads(out) == {"multi": "line 1\nline 2\n", "system": "Hi [there]"}
    code, out, _ = await eventconfig(settings, "dump")
    assert json.loads(out) == {"prompt": {"multi": "line 1\nline 2\n", "system": "Hi [there]"}}
    code, out, _ = await eventconfig(settings, "dump", "-w", "elsewhere")
    assert (code, json.loads(out)) == (0, {})

    code, out, _ = await eventconfig(settings, "delete", "-t", "prompt", "-k", "system")
    assert (code, out) == (0, "deleted prompt/system (version 3)\n")
    assert await eventconfig(settings, "list", "-t", "prompt") == (0, "multi\n", "")


async def test_cli_errors_exit_1_with_type_and_message(settings, service):
    code, out, err = await eventconfig(settings, "put", "-t", "t", "-k", "k", "--value", "v", "--stdin",
                                       stdin="x")
    assert code != 0 and out == "" and "either --value or --stdin, not both" in err
    code, _, err = await eventconfig(settings, "put", "-w", "", "-t", "t", "-k", "k", "--value", "v")
    assert (code, err.strip()) == (1, "error: bad-request: Workspace is required")
    assert (await eventconfig(settings, "put", "-t", "t", "-k", "k", "--value", "v", "--if-version", "0"))[0] == 0
    code, _, err = await eventconfig(settings, "put", "-t", "t", "-k", "k", "--value", "w", "--if-version", "0")
    assert code == 1 and err.startswith("error: conflict: "), err
    code, _, err = await eventconfig(settings, "delete", "-t", "t", "-k", "k", "--if-version", "9")
    assert code == 1 and err.startswith("error: conflict: "), err
    assert await eventconfig(settings, "get", "-t", "t", "-k", "k") == (0, "v\n", "")

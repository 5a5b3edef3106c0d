"""Pokes on the notify topic (docs/design.md §7, §9.6): filtered, versioned, in order, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal

import pytest

from eventconfig.codec import default_codec
from eventconfig.push.role import PushProjector
from eventconfig.process import ConfigService
from tests.support import start_process, wait_until

pytestmark = pytest.mark.integration
codec = default_codec()


async def pokes(wire, settings, until_version: int, timeout: float = 30) -> list[dict]:
    """Every poke on the notify topic, once one with ``until_version`` (or later) is there."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [codec.decode("ConfigPush", r.value) for r in await wire.read_topic(settings.topics.notify)]
        if (found and found[-1]["version"] >= until_version) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def mutations(wire, settings) -> list[dict]:
    return [codec.decode("Mutation", r.value) for r in await wire.read_topic(settings.topics.history)]


def assert_pokes_cover_history(found: list[dict], history: list[dict]) -> None:
    """Each poke covers the versions since the previous poke: exactly their non-reserved changes."""
    versions = [p["version"] for p in found]
    assert versions == sorted(set(versions)), "pokes are in order and never duplicated"
    previous = 0
    for poke in found:
        assert poke["previous_version"] == previous, "each poke names the one before it, across restarts too"
        expected: dict[str, set[str]] = {}
        items: dict[tuple[str, str, str], tuple[str | None, int]] = {}
        for m in history:
            if previous < m["version"] <= poke["version"] and not m["workspace"].startswith("_"):
                for change in m["changes"]:
                    expected.setdefault(change["type"], set()).add(m["workspace"])
                    items[(m["workspace"], change["type"], change["key"])] = (change["value"], m["version"])
        assert {t: set(ws) for t, ws in poke["changes"].items()} == expected, poke
        if poke["items"] is not None:
            assert {(i["workspace"], i["type"], i["key"]): (i["value"], i["version"]) for i in poke["items"]} == items
        previous = poke["version"]
    qualifying = [m["version"] for m in history if not m["workspace"].startswith("_") and m["changes"]]
    assert not qualifying or versions[-1] >= qualifying[-1], "no qualifying version is left without a poke"


async def test_16_23_24_one_poke_per_write_listing_its_types_and_workspace(service, wire):
    await wire.put("w", ("t1", "a", "1"), ("t1", "b", "2"), ("t2", "c", "3"))
    await wire.delete("w", ("t1", "missing"), ("t3", "x"))
    found = await pokes(wire, service.settings, 2)
    assert [without_items(p) for p in found] == [
        {"version": 1, "changes": {"t1": ["w"], "t2": ["w"]}, "workspace_changes": None, "previous_version": 0},
        {"version": 2, "changes": {"t1": ["w"], "t3": ["w"]}, "workspace_changes": None, "previous_version": 1}]
    assert [(i["type"], i["key"], i["value"], i["version"]) for p in found for i in p["items"]] == [
        ("t1", "a", "1", 1), ("t1", "b", "2", 1), ("t2", "c", "3", 1), ("t1", "missing", None, 2), ("t3", "x", None, 2)]


def without_items(poke: dict) -> dict:
    return {k: v for k, v in poke.items() if k != "items"}


async def test_21_29_31_reserved_only_and_empty_versions_give_no_poke(service, wire):
    await wire.put("__template__", ("t", "k", "v"))
    await wire.put("_x", ("t", "k", "v"))
    await wire.put("w")
    await wire.put("w", ("t", "k", "v"))
    found = await pokes(wire, service.settings, 4)
    assert [without_items(p) for p in found] == [
        {"version": 4, "changes": {"t": ["w"]}, "workspace_changes": None, "previous_version": 0}]


async def test_69_workspace_lifecycle_pokes(service, wire):
    await wire.put("__workspaces__", ("workspace", "acme", '{"enabled": true}'))
    await wire.delete("__workspaces__", ("workspace", "acme"))
    found = await pokes(wire, service.settings, 2)
    assert found == [
        {"version": 1, "changes": {}, "workspace_changes": {"created": ["acme"], "deleted": []}, "items": [],
         "previous_version": 0},
        {"version": 2, "changes": {}, "workspace_changes": {"created": [], "deleted": ["acme"]}, "items": [],
         "previous_version": 1}]


async def test_pokes_are_exactly_once_through_a_projector_kill_9(settings, topics, wire, tmp_path):
    service = ConfigService(dataclasses.replace(settings, writer_pokes=False), projector=False)  # the projector pokes
    await service.start()
    await service.writer.wait_active(60)
    projector = _start_projector(settings, tmp_path)
    try:
        async def load() -> None:
            for i in range(120):
                await wire.put(f"w{i % 3}" if i % 5 else "_reserved", (f"t{i % 4}", str(i), "v"))

        writing = asyncio.create_task(load())
        async def poked_15() -> bool:
            return len(await wire.read_topic(settings.topics.notify)) >= 15

        await wait_until(poked_15, 60, "the projector did not write 15 pokes before the kill")
        projector.send_signal(signal.SIGKILL)
        projector.wait()
        await asyncio.sleep(0.5)
        projector = _start_projector(settings, tmp_path)
        await writing
        history = await mutations(wire, settings)
        found = await pokes(wire, settings, history[-1]["version"] - (history[-1]["workspace"] == "_reserved"))
        assert_pokes_cover_history(found, history)
    finally:
        projector.terminate()
        projector.wait(30)
        await service.stop()


def _start_projector(settings, tmp_path):
    return start_process(settings, "project", tmp_path / "unused", tmp_path / "projector.log")


async def test_a_lagging_projector_merges_consecutive_versions(settings, topics, wire):
    service = ConfigService(dataclasses.replace(settings, writer_pokes=False), projector=False)  # the projector pokes
    await service.start()
    await service.writer.wait_active(60)
    for i in range(30):
        await wire.put("w", (f"t{i % 3}", str(i), "v"))
    projector = PushProjector(dataclasses.replace(settings, projector_merge_lag_records=10))
    task = asyncio.create_task(projector.run())
    try:
        found = await pokes(wire, settings, 30)
        assert len(found) < 30, "a backlog of versions is merged"
        assert without_items(found[-1]) | {"previous_version": None} == {
            "version": 30, "changes": {"t0": ["w"], "t1": ["w"], "t2": ["w"]}, "workspace_changes": None,
            "previous_version": None}
        assert found[-1]["items"] is not None, "merged items that fit the cap are kept"
        assert_pokes_cover_history(found, await mutations(wire, settings))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.stop()


async def test_watch_prints_pokes_with_their_values(service, wire):
    import json
    import subprocess
    import sys

    await wire.put("w", ("prompt", "k", "hello"))
    await wire.put("_private", ("prompt", "k", "hidden"))
    await wire.put("w", ("flow", "f", "x"))
    settings = service.settings
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventconfig", "-b", settings.bootstrap_servers, "--topic-prefix",
        settings.topic_prefix, "watch", "--type", "prompt", "--values", "--format", "json", "--from-beginning",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert json.loads(line) == {"version": 1, "changes": {"prompt": ["w"]}, "workspace_changes": None,
                                    "values": {"w": {"prompt": {"k": "hello"}}}}
    finally:
        proc.terminate()
        await proc.wait()

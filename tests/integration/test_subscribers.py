"""ConfigSubscriber and LocalView against the real service: handlers see what a dict model predicts."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest
from prometheus_client import REGISTRY

from eventconfig.client import ConfigClient, ConfigSubscriber, LocalView
from eventconfig.client.client import ClientError
from eventconfig.client.hub import connection_stats
from eventconfig.errors import ReadTimeout, TopologyError, ViewError
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.localbroker.broker import free_port
from eventconfig.view import ViewStore
from tests.support import running_service

pytestmark = pytest.mark.integration


class Recorder:
    """A handler that keeps the state its calls describe: ``state[workspace][type] = {key: value}``."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, dict[str, str]]] = {}
        self.calls: list[tuple[str, dict, int]] = []
        self.created: list[str] = []
        self.deleted: list[str] = []

    async def __call__(self, workspace: str, config: dict, version: int) -> None:
        self.calls.append((workspace, config, version))
        for type_, values in config.items():
            self.state.setdefault(workspace, {})[type_] = dict(values)

    async def on_created(self, workspace: str, version: int) -> None:
        self.created.append(workspace)

    async def on_deleted(self, workspace: str, version: int) -> None:
        self.deleted.append(workspace)


def expected(model: dict, types: set[str]) -> dict:
    out: dict[str, dict[str, dict[str, str]]] = {}
    for (ws, type_, key), value in model.items():
        if type_ in types and not ws.startswith("_"):
            out.setdefault(ws, {}).setdefault(type_, {})[key] = value
    return out


def without_empty(state: dict) -> dict:
    return {ws: {t: v for t, v in types.items() if v} for ws, types in state.items()
            if any(v for v in types.values())}


async def random_writes(client: ConfigClient, model: dict, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        ws = rng.choice(["a", "b", "_sys"])
        if rng.random() < 0.7:
            items = [(rng.choice(["prompt", "flow", "other"]), rng.choice("xyz"), str(rng.random())) for _ in range(2)]
            await client.put_many(ws, items)
            model.update({(ws, t, k): v for t, k, v in items})
        else:
            keys = [(rng.choice(["prompt", "flow"]), rng.choice("xyz"))]
            await client.delete_many(ws, keys)
            for t, k in keys:
                model.pop((ws, t, k), None)


async def eventually(condition, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_subscriber_starts_with_current_state_then_follows_every_change(service, settings):
    async with ConfigClient(settings) as client:
        model: dict = {}
        await random_writes(client, model, 15, seed=1)
        prompts, everything = Recorder(), Recorder()
        subscriber = ConfigSubscriber(settings, client=client)
        subscriber.on_change(prompts, types=["prompt", "flow"])
        subscriber.on_change(everything)
        subscriber.on_workspace_created(everything.on_created)
        await subscriber.start()
        try:
            assert without_empty(prompts.state) == expected(model, {"prompt", "flow"}), "startup fetch"
            assert everything.calls == [], "untyped handlers get nothing at startup"
            await random_writes(client, model, 40, seed=2)
            await client.put("__workspaces__", "workspace", "acme", "{}")
            final = await client.version()
            await eventually(lambda: subscriber.version >= final)
            assert without_empty(prompts.state) == expected(model, {"prompt", "flow"})
            assert all(not ws.startswith("_") for ws, _, _ in prompts.calls + everything.calls)
            assert {t for _, config, _ in everything.calls for t in config} == {"prompt", "flow", "other"}
            assert everything.created == ["acme"]
            versions = [v for _, _, v in prompts.calls]
            assert versions == sorted(versions)
        finally:
            await subscriber.stop()


async def test_42_a_delete_that_empties_a_type_delivers_an_empty_dict(service, settings):
    async with ConfigClient(settings) as client:
        await client.put("w", "prompt", "only", "v")
        recorder = Recorder()
        async with ConfigSubscriber(settings, client=client) as subscriber:
            subscriber.on_change(recorder, types=["prompt"])
            version = await client.delete("w", "prompt", "only")
            await eventually(lambda: subscriber.version >= version)
        assert recorder.calls[-1] == ("w", {"prompt": {}}, version)


async def test_subscribe_then_fetch_misses_no_write_racing_the_start(service, settings):
    async with ConfigClient(settings) as client:
        model: dict = {}
        racing = asyncio.create_task(random_writes(client, model, 60, seed=3))
        await asyncio.sleep(0.2)
        recorder = Recorder()
        subscriber = ConfigSubscriber(settings)
        subscriber.on_change(recorder, types=["prompt", "flow", "other"])
        await subscriber.start()
        try:
            await racing
            final = await client.version()
            await eventually(lambda: subscriber.version >= final)
            assert without_empty(recorder.state) == expected(model, {"prompt", "flow", "other"})
        finally:
            await subscriber.stop()


async def test_local_view_equals_the_service_view_and_resumes_without_replay(service, settings, tmp_path):
    async with ConfigClient(settings) as client:
        model: dict = {}
        await random_writes(client, model, 30, seed=4)
        recorder = Recorder()
        view = LocalView(settings, tmp_path / "local")
        view.on_change(recorder, types=["prompt"])
        await view.start()
        try:
            await random_writes(client, model, 30, seed=5)
            version = await client.version()
            assert await view.wait_for_version(version, 20)
            for ws in ("a", "b", "_sys"):
                assert view.get_all(ws) == await client.get_all(ws)
            (ws, type_, key), value = next(iter(model.items()))
            assert view.get(ws, type_, key) == value
            assert view.keys("a", "prompt") == await client.keys("a", "prompt")
            await eventually(lambda: without_empty(recorder.state) == expected(model, {"prompt"}))
        finally:
            await view.stop()
        again = LocalView(settings, tmp_path / "local")
        await again.start()
        try:
            assert again.materializer.records_applied == 0, "a restart resumes from the stored offset"
            assert again.version == version
        finally:
            await again.stop()


async def test_local_view_point_reads_stay_exact_through_its_item_cache(service, settings, tmp_path):
    """Every key of the store (and keys never written) is read, so cached, before each round of writes;
    after the round every read equals the service's state: the cache never serves a value the view
    has replaced or deleted, nor keeps an absent key absent once it is written."""
    universe = [(ws, t, k) for ws in ("a", "b", "_sys") for t in ("prompt", "flow", "other") for k in "xyz"]
    async with ConfigClient(settings) as client:
        model: dict = {}
        view = LocalView(settings, tmp_path / "local")
        await view.start()
        try:
            for seed in range(6, 9):
                assert all(view.get(*item) == model.get(item) for item in universe)
                await random_writes(client, model, 15, seed=seed)
                assert await view.wait_for_version(await client.version(), 20)
                assert {item: view.get(*item) for item in universe} == {item: model.get(item) for item in universe}
            assert view.materializer.store.cached_items == len(universe), "every key read was cached"
        finally:
            await view.stop()


async def test_a_type_too_large_to_fetch_is_skipped_while_other_types_keep_arriving(settings):
    """A too-large fetch used to freeze every later poke; now only its (type, workspace) waits for a poke
    that makes it fit."""
    small = dataclasses.replace(settings, max_message_bytes=200 * 1024, max_value_bytes=100 * 1024)
    permanent_before = fetch_failures("permanent")
    async with running_service(small), ConfigClient(small) as client:
        await client.put("w", "big", "k1", "x" * 90_000)
        await client.put("w", "big", "k2", "y" * 90_000)  # getvalues of w/big is now over the response limit
        await client.put("w", "prompt", "p", "1")
        recorder = Recorder()
        subscriber = ConfigSubscriber(small, client=client, retry_initial_s=0.05)
        subscriber.on_change(recorder, types=["big", "prompt"])
        await subscriber.start(timeout=30)
        try:
            assert recorder.state == {"w": {"prompt": {"p": "1"}}}, "the startup fetch skipped only `big`"
            await client.put("w", "big", "k3", "small")
            version = await client.put("w", "prompt", "p", "2")
            await eventually(lambda: subscriber.version >= version)
            assert recorder.state == {"w": {"prompt": {"p": "2"}}}
            assert fetch_failures("permanent") == permanent_before + 2
            version = await client.delete("w", "big", "k2")
            await eventually(lambda: subscriber.version >= version)
            assert recorder.state["w"]["big"] == {"k1": "x" * 90_000, "k3": "small"}, "the pair is fetched again"
        finally:
            await subscriber.stop()


async def test_a_subscriber_start_with_no_service_times_out_and_closes_everything(settings):
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    subscriber = ConfigSubscriber(settings, retry_initial_s=0.05)
    subscriber.on_change(Recorder(), types=["prompt"])
    hubs = len(connection_stats())
    with pytest.raises(ReadTimeout, match="no initial state within 2 s"):
        await subscriber.start(timeout=2)
    assert len(connection_stats()) == hubs, "its Kafka connections are closed"


async def test_a_local_view_start_that_fails_raises_a_typed_error_and_releases_the_view(settings, tmp_path):
    with pytest.raises(TopologyError, match="does not exist"):
        await LocalView(settings, tmp_path / "local").start()
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    view = LocalView(settings, tmp_path / "local")
    with pytest.raises(ViewError, match="did not catch up"):
        await view.start(timeout=0)
    ViewStore.open(tmp_path / "local").close()  # nothing holds the view any more: the materializer stopped
    with pytest.raises(ClientError, match="cannot reach Kafka"):
        await LocalView(dataclasses.replace(settings, bootstrap_servers=f"127.0.0.1:{free_port()}"),
                        tmp_path / "other").start()


def fetch_failures(kind: str) -> float:
    return REGISTRY.get_sample_value("eventconfig_subscriber_fetch_failures_total", {"kind": kind}) or 0.0

"""Who gets what from a change, and how a failed fetch is retried (no broker: a fake client)."""

from __future__ import annotations

import asyncio

from eventconfig.client.handlers import Handlers
from eventconfig.client.subscriber import ConfigSubscriber
from eventconfig.errors import ReadTimeout
from eventconfig.settings import Settings


class Calls(list):
    async def __call__(self, *args):
        self.append(args)


async def test_typed_handlers_get_their_types_and_untyped_ones_everything_but_not_at_startup():
    handlers, prompts, everything = Handlers(), Calls(), Calls()
    handlers.on_change(prompts, types=["prompt"])
    handlers.on_change(everything)
    await handlers.deliver("w", {"prompt": {"k": "v"}, "flow": {}}, 3)
    await handlers.deliver("w", {"flow": {"f": "1"}}, 4)
    await handlers.deliver("w", {"prompt": {"k": "v"}}, 5, startup=True)
    assert prompts == [("w", {"prompt": {"k": "v"}}, 3), ("w", {"prompt": {"k": "v"}}, 5)]
    assert everything == [("w", {"prompt": {"k": "v"}, "flow": {}}, 3), ("w", {"flow": {"f": "1"}}, 4)]


async def test_reserved_workspaces_are_never_delivered():
    handlers, calls = Handlers(), Calls()
    handlers.on_change(calls)
    await handlers.deliver("__template__", {"t": {"k": "v"}}, 1)
    assert calls == []


async def test_a_failing_handler_does_not_stop_the_others():
    handlers, calls = Handlers(), Calls()

    async def broken(*args):
        raise RuntimeError("boom")

    handlers.on_change(broken)
    handlers.on_change(calls)
    await handlers.deliver("w", {"t": {}}, 1)
    assert calls == [("w", {"t": {}}, 1)]


class FlakyClient:
    """Fails the first ``failures`` fetches, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.fetches = 0

    async def get_values(self, workspace, type_, min_version=None):
        self.fetches += 1
        if self.fetches <= self.failures:
            raise ReadTimeout("no answer")
        assert min_version == 7, "a poke's fetch reads at least the poke's version"
        return {"k": "v"}


async def test_41_a_failed_fetch_is_retried_and_the_handler_called_once():
    client = FlakyClient(failures=2)
    subscriber = ConfigSubscriber(Settings.load(env={}), client=client, retry_initial_s=0.01)  # type: ignore[arg-type]
    calls = Calls()
    subscriber.on_change(calls, types=["prompt"])
    poke = {"version": 7, "changes": {"prompt": ["w", "_hidden"], "other": ["w"]}, "workspace_changes": None}
    await asyncio.wait_for(subscriber._retrying("poke", lambda: subscriber._apply(poke)), 5)
    assert client.fetches == 3
    assert calls == [("w", {"prompt": {"k": "v"}}, 7)]


class FakeRecord:
    def __init__(self, offset: int, value: bytes | None) -> None:
        self.offset, self.value = offset, value


class FakeNotify:
    """A notify-topic consumer that hands out the given records once, then nothing."""

    def __init__(self, tp, records) -> None:
        self.tp, self.records = tp, records

    async def getmany(self, tp, timeout_ms=0):
        records, self.records = self.records, []
        if not records:
            await asyncio.sleep(3600)
        return {self.tp: records}


async def test_34_35_pokes_at_or_below_the_fetched_version_are_ignored_and_bad_ones_skipped():
    from eventconfig.codec import default_codec

    codec = default_codec()

    def poke(version: int) -> bytes:
        return codec.encode("ConfigPush", {"version": version, "changes": {"prompt": ["w"]}})

    class Client:
        async def get_values(self, workspace, type_, min_version=None):
            return {"k": "v"}

    subscriber = ConfigSubscriber(Settings.load(env={}), client=Client())  # type: ignore[arg-type]
    calls = Calls()
    subscriber.on_change(calls, types=["prompt"])
    subscriber.version = 7
    subscriber._consumer = FakeNotify(subscriber._tp, [  # type: ignore[assignment]
        FakeRecord(0, poke(6)), FakeRecord(1, poke(7)), FakeRecord(2, b"garbage"), FakeRecord(3, None),
        FakeRecord(4, poke(8))])
    follower = asyncio.create_task(subscriber._follow())
    for _ in range(100):
        if subscriber.version == 8:
            break
        await asyncio.sleep(0.01)
    follower.cancel()
    assert subscriber.version == 8
    assert calls == [("w", {"prompt": {"k": "v"}}, 8)], "only the newer poke is applied"

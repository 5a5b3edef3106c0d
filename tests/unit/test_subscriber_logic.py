"""Who gets what from a change, and how a failed fetch is retried or skipped (no broker: a fake client)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from eventconfig.client import Versioned
from eventconfig.client.client import ClientError
from eventconfig.client.hub import connection_stats
from eventconfig.client.handlers import Handlers
from eventconfig.client.subscriber import ConfigSubscriber, failure_kind
from eventconfig.errors import BadOperation, BadRequest, ConfigError, ReadTimeout, TooLarge, error_from_wire
from eventconfig.localbroker.broker import free_port
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

    async def get_values_versioned(self, workspace, type_, min_version=None):
        self.fetches += 1
        if self.fetches <= self.failures:
            raise ReadTimeout("no answer")
        assert min_version == 7, "a poke's fetch reads at least the poke's version"
        return Versioned({"k": "v"}, 7)


async def test_41_a_failed_fetch_is_retried_and_the_handler_called_once():
    client = FlakyClient(failures=2)
    subscriber = ConfigSubscriber(Settings.load(env={}), client=client, retry_initial_s=0.01)  # type: ignore[arg-type]
    calls = Calls()
    subscriber.on_change(calls, types=["prompt"])
    poke = {"version": 7, "changes": {"prompt": ["w", "_hidden"], "other": ["w"]}, "workspace_changes": None}
    await asyncio.wait_for(subscriber._apply(poke), 5)
    assert client.fetches == 3
    assert calls == [("w", {"prompt": {"k": "v"}}, 7)]


@pytest.mark.parametrize(("error", "kind"), [
    (ReadTimeout("no answer"), "transient"), (ClientError("broker down"), "transient"),
    (KafkaConnectionError(), "transient"), (TimeoutError(), "transient"),
    (TooLarge("big"), "permanent"), (BadRequest("bad"), "permanent"), (BadOperation("what"), "permanent"),
    (ConfigError("boom"), "unexpected"), (error_from_wire("new-kind", "?"), "unexpected"),
    (RuntimeError("bug"), "unexpected"),
])
def test_fetch_failures_are_transient_permanent_or_unexpected(error, kind):
    assert failure_kind(error) == kind


class PairClient:
    """Answers get_values per (workspace, type) from a script of results; an exception is raised."""

    def __init__(self, script: dict[tuple[str, str], list]) -> None:
        self.script = script
        self.fetches: list[tuple[str, str]] = []

    async def get_values_versioned(self, workspace, type_, min_version=None):
        self.fetches.append((workspace, type_))
        answers = self.script[(workspace, type_)]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return Versioned(answer, min_version)


def failures(kind: str) -> float:
    return REGISTRY.get_sample_value("eventconfig_subscriber_fetch_failures_total", {"kind": kind}) or 0.0


def poke(version: int, *pairs: tuple[str, str]) -> dict:
    changes: dict[str, list[str]] = {}
    for workspace, type_ in pairs:
        changes.setdefault(type_, []).append(workspace)
    return {"version": version, "changes": changes, "workspace_changes": None}


async def test_a_permanent_failure_skips_that_pair_only_is_counted_and_the_next_poke_tries_again(caplog):
    client = PairClient({("w", "big"): [TooLarge("response over the limit"), {"k": "small now"}],
                         ("w", "prompt"): [{"p": "1"}], ("v", "big"): [{"b": "2"}]})
    subscriber = ConfigSubscriber(Settings.load(env={}), client=client, retry_initial_s=0.01)  # type: ignore[arg-type]
    calls = Calls()
    subscriber.on_change(calls, types=["big", "prompt"])
    before = failures("permanent")
    await asyncio.wait_for(subscriber._apply(poke(5, ("w", "big"), ("w", "prompt"), ("v", "big"))), 5)
    assert sorted(calls) == [("v", {"big": {"b": "2"}}, 5), ("w", {"prompt": {"p": "1"}}, 5)]
    assert client.fetches.count(("w", "big")) == 1, "a permanent failure is not retried"
    assert failures("permanent") == before + 1
    [skipped] = [r for r in caplog.records if "failed for good" in r.getMessage()]
    assert skipped.fields["type"] == "big" and skipped.fields["workspace"] == "w"  # type: ignore[attr-defined]
    assert skipped.fields["error_class"] == "TooLarge"  # type: ignore[attr-defined]
    calls.clear()
    await asyncio.wait_for(subscriber._apply(poke(6, ("w", "big"))), 5)
    assert calls == [("w", {"big": {"k": "small now"}}, 6)], "a later poke of the pair is fetched again"


async def test_an_unexpected_failure_is_retried_a_few_times_then_skipped():
    flaky = PairClient({("w", "t"): [ConfigError("view restarting"), ConfigError("view restarting"), {"k": "v"}]})
    subscriber = ConfigSubscriber(Settings.load(env={}), client=flaky, retry_initial_s=0.01,  # type: ignore[arg-type]
                                  unexpected_attempts=3)
    calls = Calls()
    subscriber.on_change(calls)
    await asyncio.wait_for(subscriber._apply(poke(3, ("w", "t"))), 5)
    assert calls == [("w", {"t": {"k": "v"}}, 3)] and len(flaky.fetches) == 3
    broken = PairClient({("w", "t"): [RuntimeError("bug in a decoder")], ("x", "t"): [{"k": "x"}]})
    subscriber._client = broken  # type: ignore[assignment]
    calls.clear()
    before = (failures("unexpected"), failures("permanent"))
    await asyncio.wait_for(subscriber._apply(poke(4, ("w", "t"), ("x", "t"))), 5)
    assert calls == [("x", {"t": {"k": "x"}}, 4)]
    assert broken.fetches.count(("w", "t")) == 3
    assert (failures("unexpected"), failures("permanent")) == (before[0] + 2, before[1] + 1)


async def test_a_start_that_cannot_reach_kafka_raises_client_error_and_leaves_nothing_open():
    settings = Settings.load({"bootstrap_servers": f"127.0.0.1:{free_port()}", "request_timeout_ms": 2000}, env={})
    subscriber = ConfigSubscriber(settings)
    with pytest.raises(ClientError, match="cannot reach Kafka"):
        await asyncio.wait_for(subscriber.start(), 30)
    assert connection_stats() == [] and kafka_clients() == (0, 0), "nothing is left open"


def kafka_clients() -> tuple[float, float]:
    return tuple(REGISTRY.get_sample_value("eventconfig_client_kafka_clients", {"kind": kind}) or 0.0
                 for kind in ("consumer", "producer"))  # type: ignore[return-value]


class FakeRecord:
    def __init__(self, offset: int, value: bytes | None) -> None:
        self.offset, self.value = offset, value


async def test_34_35_pokes_at_or_below_the_fetched_version_are_ignored_and_bad_ones_skipped():
    from eventconfig.codec import default_codec

    codec = default_codec()

    def poke(version: int) -> bytes:
        return codec.encode("ConfigPush", {"version": version, "changes": {"prompt": ["w"]}})

    class Client:
        async def get_values_versioned(self, workspace, type_, min_version=None):
            return Versioned({"k": "v"}, min_version)

    subscriber = ConfigSubscriber(Settings.load(env={}), client=Client())  # type: ignore[arg-type]
    calls = Calls()
    subscriber.on_change(calls, types=["prompt"])
    subscriber.version = 7
    subscriber._pokes.put_nowait([  # what the client's connection hub hands its listeners
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

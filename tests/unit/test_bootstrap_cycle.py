"""The wake cycle against an in-memory service (docs/compatibility.md behaviours 57–61), no broker.

``MemoryConfig`` runs the writer's pure request handler, so flag reads and compare-and-set flag
writes behave as they do against the real service.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from eventconfig.bootstrap import (STATE_TYPE, STATE_WORKSPACE, BootstrapError, Bootstrapper, Cadence, Configured,
                                   Flag, InitContext, Initialiser, InitialiserError)
from eventconfig.bootstrap.testing import MemoryConfig, MemoryConfigClient
from eventconfig.settings import Settings

FAST = Cadence(gate_down=5, converging=15, steady=300, gate_timeout=1, run_timeout=0.5)


class Recorder(Initialiser):
    """Records each run's flags; fails its first ``fail_times`` runs."""

    def __init__(self, fail_times: int = 0, error: Exception | None = None) -> None:
        self.calls: list[tuple[Flag | None, Flag]] = []
        self.contexts: list[InitContext] = []
        self.fail_times = fail_times
        self.error = error or RuntimeError("boom")

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        self.calls.append((old_flag, new_flag))
        self.contexts.append(ctx)
        if len(self.calls) <= self.fail_times:
            raise self.error


class PreGateRecorder(Recorder):
    wait_for_services = False


def bootstrapper(memory: MemoryConfig, *entries: tuple[str, Flag, Initialiser]) -> Bootstrapper:
    return Bootstrapper(Settings(), [Configured(*e) for e in entries], cadence=FAST, client_factory=memory.client)


def stored(memory: MemoryConfig) -> dict[str, str]:
    return memory.config(STATE_WORKSPACE).get(STATE_TYPE, {})


async def test_58_57_a_first_run_stores_the_flag_then_every_later_wake_skips_and_sleeps_steady() -> None:
    memory, a, b = MemoryConfig(), Recorder(), Recorder()
    boot = bootstrapper(memory, ("a", "v1", a), ("b", 3, b))
    first = await boot.run_once()
    assert (first.ran, first.gate, first.sleep) == (["a", "b"], True, 15)
    assert a.calls == [(None, "v1")] and b.calls == [(None, 3)]
    assert stored(memory) == {"a": '"v1"', "b": "3"}, "json.dumps(flag)"
    second = await boot.run_once()
    assert (second.skipped, second.sleep, second.complete) == (["a", "b"], 300, True)
    assert second["a"].reason == 'flag "v1" already applied'
    assert len(a.calls) == 1 and len(b.calls) == 1
    restarted = await bootstrapper(memory, ("a", "v1", Recorder()), ("b", 3, Recorder())).run_once()
    assert restarted.skipped == ["a", "b"], "the state lives in config, not in the process"


async def test_59_a_failure_leaves_its_flag_unwritten_blocks_nobody_and_is_retried() -> None:
    memory, a, flaky, c = MemoryConfig(), Recorder(), Recorder(fail_times=2), Recorder()
    boot = bootstrapper(memory, ("a", "v1", a), ("flaky", "v1", flaky), ("c", "v1", c))
    first = await boot.run_once()
    assert (first.ran, first.failed, first.sleep, first.complete) == (["a", "c"], ["flaky"], 15, False)
    assert first["flaky"].reason == "RuntimeError: boom"
    assert "flaky" not in stored(memory)
    second = await boot.run_once()
    assert (second.skipped, second.failed, second.sleep) == (["a", "c"], ["flaky"], 15)
    third = await boot.run_once()
    assert third.ran == ["flaky"] and flaky.calls == [(None, "v1")] * 3
    assert (await boot.run_once()).sleep == 300


async def test_60_a_closed_gate_holds_every_post_gate_initialiser_but_not_the_pre_gate_ones() -> None:
    memory, pre, post = MemoryConfig(), PreGateRecorder(), Recorder()
    memory.down = True
    boot = bootstrapper(memory, ("post", "v1", post), ("pre", "v1", pre))
    down = await boot.run_once()
    assert (down.gate, down.ran, down.held, down.sleep) == (False, ["pre"], ["post"], 5)
    assert "in-memory config service is down" in down.gate_error and post.calls == []
    assert [r.name for r in down.results] == ["pre", "post"], "pre-gate initialisers go first"
    memory.down = False
    up = await boot.run_once()
    assert (up.gate, up.ran, up.skipped) == (True, ["post"], ["pre"])


async def test_60_a_gate_that_does_not_answer_in_time_is_closed() -> None:
    memory = MemoryConfig()

    class Silent(MemoryConfigClient):
        async def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            await asyncio.sleep(60)

    boot = Bootstrapper(Settings(), [Configured("post", "v1", Recorder())], cadence=Cadence(gate_timeout=0.05),
                        client_factory=lambda settings, timeout: Silent(memory, settings))
    report = await boot.run_once()
    assert (report.gate, report.held) == (False, ["post"])
    assert report["post"].reason == "service gate closed: no answer within 0.05 s; is the config service running?"


async def test_61_a_flag_change_reruns_exactly_that_initialiser_with_old_and_new_flags(caplog) -> None:
    memory = MemoryConfig()
    await bootstrapper(memory, ("a", "v1", Recorder()), ("b", "v1", Recorder())).run_once()
    a, b = Recorder(), Recorder()
    caplog.set_level(logging.INFO, logger="eventconfig.bootstrap")
    report = await bootstrapper(memory, ("a", "v1", a), ("b", "v2", b)).run_once()
    assert (report.ran, report.skipped) == (["b"], ["a"])
    assert a.calls == [] and b.calls == [("v1", "v2")]
    assert (report["b"].old_flag, report["b"].new_flag, report["b"].reason) == ("v1", "v2", "flag changed")
    assert stored(memory)["b"] == '"v2"'
    rerun = [r for r in caplog.records if "deliberate re-run" in r.getMessage()]
    assert [r.fields for r in rerun] == [{"name": "b", "old_flag": '"v1"', "new_flag": '"v2"'}]
    assert any(r.getMessage() == "initialiser skipped" and r.fields["name"] == "a" for r in caplog.records)


async def test_flags_compare_by_their_json_text_and_a_hand_written_raw_flag_still_counts() -> None:
    memory = MemoryConfig()
    client = memory.client()
    await client.start()
    await client.put_many(STATE_WORKSPACE, [(STATE_TYPE, "raw", "v1"), (STATE_TYPE, "number", "1")])
    raw, number = Recorder(), Recorder()
    report = await bootstrapper(memory, ("raw", "v1", raw), ("number", True, number)).run_once()
    assert report.skipped == ["raw"], "an unquoted v1 someone wrote by hand equals the flag v1"
    assert number.calls == [(1, True)], "1 and true are different flags, although 1 == True in Python"


async def test_pre_gate_initialisers_get_no_client_store_nothing_and_retry_until_they_succeed_once() -> None:
    memory, pre = MemoryConfig(), PreGateRecorder(fail_times=1)
    boot = bootstrapper(memory, ("pre", "v1", pre))
    first = await boot.run_once()
    assert (first.gate, first.failed, first.sleep) == (None, ["pre"], 15), "no post-gate initialiser: no gate"
    assert (await boot.run_once()).ran == ["pre"]
    again = await boot.run_once()
    assert (again.skipped, again.sleep) == (["pre"], 300)
    assert pre.calls == [(None, "v1"), (None, "v1")]
    assert memory.requests == [], "pre-gate initialisers never touch the config service"
    with pytest.raises(BootstrapError, match="runs before the service gate and has no config client"):
        pre.contexts[0].config
    assert pre.contexts[0].logger.name == "eventconfig.bootstrap.init.pre"
    assert (await bootstrapper(memory, ("pre", "v1", pre)).run_once()).ran == ["pre"], "a new process re-runs it"


async def test_a_flag_write_that_loses_a_race_fails_and_the_initialiser_runs_again() -> None:
    memory = MemoryConfig()

    class Racer(Recorder):
        async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
            await super().run(ctx, old_flag, new_flag)
            if len(self.calls) == 1:  # another bootstrapper stores a flag between our gate read and our write
                await ctx.config.put(STATE_WORKSPACE, STATE_TYPE, ctx.name, '"other"')

    racer = Racer()
    boot = bootstrapper(memory, ("racer", "v1", racer))
    first = await boot.run_once()
    assert first.failed == ["racer"] and "storing its flag failed" in first["racer"].reason
    assert "conflict" in first["racer"].reason and stored(memory)["racer"] == '"other"', "never overwritten"
    second = await boot.run_once()
    assert second.ran == ["racer"] and racer.calls[1] == ("other", "v1")


async def test_a_hung_initialiser_times_out_and_the_others_still_run() -> None:
    class Hung(Initialiser):
        async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
            await asyncio.sleep(60)

    memory, after = MemoryConfig(), Recorder()
    report = await bootstrapper(memory, ("hung", "v1", Hung()), ("after", "v1", after)).run_once()
    assert (report.failed, report.ran) == (["hung"], ["after"])
    assert report["hung"].reason == "did not finish within 0.5 s"


async def test_expected_failures_log_without_a_traceback_and_unexpected_ones_with_it(caplog) -> None:
    memory = MemoryConfig()
    caplog.set_level(logging.INFO, logger="eventconfig.bootstrap")
    await bootstrapper(memory, ("expected", "v1", Recorder(1, InitialiserError("template not seeded"))),
                       ("unexpected", "v1", Recorder(1, KeyError("x")))).run_once()
    failures = {r.fields["name"]: r for r in caplog.records if r.getMessage().startswith("initialiser failed")}
    assert failures["expected"].levelno == logging.WARNING and not failures["expected"].exc_info
    assert failures["unexpected"].levelno == logging.ERROR and failures["unexpected"].exc_info is not None
    summary = [r for r in caplog.records if r.getMessage() == "wake done"][-1]
    assert summary.fields == {"failed": "expected,unexpected", "next_wake_s": 15}


async def test_run_loops_with_the_reported_sleep_until_stopped() -> None:
    memory, a = MemoryConfig(), Recorder(fail_times=2)
    boot = Bootstrapper(Settings(), [Configured("a", "v1", a)], client_factory=memory.client,
                        cadence=Cadence(gate_down=0.01, converging=0.01, steady=0.01))
    task = asyncio.create_task(boot.run())
    for _ in range(200):
        if boot.last_report is not None and boot.last_report.skipped == ["a"]:
            break
        await asyncio.sleep(0.01)
    boot.stop()
    await asyncio.wait_for(task, 1)
    assert len(a.calls) == 3 and json.loads(stored(memory)["a"]) == "v1"

"""The one runner of long-lived commands (serve, project, bootstrap): start, run until a signal, stop."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from eventconfig.cli.common import until_signal


class Work:
    """A long-lived component that records what happened to it."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()
        self.asked_to_stop = asyncio.Event()

    async def start(self) -> None:
        self.events.append("start")

    async def run_forever(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("cancelled")
            raise

    async def run_until_asked(self) -> None:
        self.started.set()
        await self.asked_to_stop.wait()
        self.events.append("finished its work")

    async def stop(self) -> None:
        self.events.append("stop")
        self.asked_to_stop.set()


async def signal_when_started(work: Work, sig: signal.Signals) -> None:
    await asyncio.wait_for(work.started.wait(), 10)
    os.kill(os.getpid(), sig)


async def test_a_signal_cancels_the_work_then_stops_it() -> None:
    work = Work()
    sender = asyncio.create_task(signal_when_started(work, signal.SIGTERM))
    await asyncio.wait_for(until_signal(work.start, work.run_forever, work.stop), 10)
    await sender
    assert work.events == ["start", "cancelled", "stop"]


async def test_a_graceful_stop_lets_the_work_finish_what_it_is_doing() -> None:
    work = Work()
    sender = asyncio.create_task(signal_when_started(work, signal.SIGINT))
    await asyncio.wait_for(until_signal(work.start, work.run_until_asked, work.stop, graceful=True), 10)
    await sender
    assert work.events == ["start", "stop", "finished its work"]


async def test_work_that_fails_is_stopped_and_its_error_raised() -> None:
    work = Work()

    async def broken() -> None:
        raise RuntimeError("the view died")

    with pytest.raises(RuntimeError, match="the view died"):
        await asyncio.wait_for(until_signal(work.start, broken, work.stop), 10)
    assert work.events == ["start", "stop"]


async def test_the_runner_leaves_no_signal_handler_behind() -> None:
    work = Work()
    sender = asyncio.create_task(signal_when_started(work, signal.SIGTERM))
    await asyncio.wait_for(until_signal(work.start, work.run_forever, work.stop), 10)
    await sender
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)

"""The faults of a chaos run: how each finds its target, strikes and recovers.

Each fault is a coroutine taking the running :class:`~chaos.run.Deployment` and returning a short
description of its target. It ends once its target is back (a killed or frozen broker node running
again and every partition fully replicated again, a paused writer or client thawed, a killed process
restarted), so one fault at a time hits the system and each round starts healthy.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from chaos.processes import ChaosError, Child

if TYPE_CHECKING:
    from chaos.run import Deployment

Fault = Callable[["Deployment"], Awaitable[str]]
TXN_STATE_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"


async def kill_log_leader(dep: Deployment) -> str:
    """kill -9 the broker leading the log partition; restart it after a while."""
    log = dep.settings.topics.log
    return await _kill_broker(dep, await dep.leader(log), "log leader", log)


async def kill_txn_coordinator(dep: Deployment) -> str:
    """kill -9 the broker leading the transaction state (the writer's transaction coordinator)."""
    return await _kill_broker(dep, await dep.leader(TXN_STATE_TOPIC), "transaction coordinator", TXN_STATE_TOPIC)


async def kill_any_broker(dep: Deployment) -> str:
    node, log = dep.rng.choice([1, 2, 3]), dep.settings.topics.log
    return await _kill_broker(dep, node, "any", log if node == await dep.leader(log) else None)


async def _kill_broker(dep: Deployment, node: int, role: str, led: str | None) -> str:
    """Kill ``node``; with ``led``, the topic it leads, also measure when that leadership moved."""
    moved = asyncio.create_task(dep.leader_moved(led, node)) if led else None
    await asyncio.to_thread(dep.broker.kill, node)
    await asyncio.sleep(dep.spec.broker_down_s)
    await dep.note_moved(moved, led)
    await asyncio.to_thread(dep.broker.start, 180.0)
    await dep.wait_replicated(180.0)
    return f"node {node} ({role})"


def pause_log_leader(seconds: float) -> Fault:
    """SIGSTOP the broker leading the log partition for ``seconds`` (a hung host or a long GC pause),
    then SIGCONT: a frozen broker keeps its connections open but answers nothing."""

    async def fault(dep: Deployment) -> str:
        log = dep.settings.topics.log
        node = await dep.leader(log)
        moved = asyncio.create_task(dep.leader_moved(log, node))
        await asyncio.to_thread(dep.broker.pause, node)
        try:
            await asyncio.sleep(seconds)
            await dep.note_moved(moved, log)
        finally:
            await asyncio.to_thread(dep.broker.resume, node)
        await dep.wait_replicated(180.0)
        return f"node {node} (log leader, frozen {seconds:.0f} s)"

    return fault


async def pause_client(dep: Deployment) -> str:
    """SIGSTOP the second load process (a client with writes and reads in flight), then SIGCONT: its
    late answers must still fit the history, and nobody else may wait for it."""
    return await _freeze(dep.loads[-1], dep.spec.client_pause_s)


async def pause_writer(dep: Deployment) -> str:
    """SIGSTOP the active writer's process for longer than its session timeout, then SIGCONT."""
    return await _freeze(await dep.active("writer"), dep.spec.pause_s)


async def _freeze(child: Child, seconds: float) -> str:
    child.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        child.signal(signal.SIGCONT)
    return child.name


async def kill_projector(dep: Deployment) -> str:
    """kill -9 the process running the active projector, then start it again on its data dir."""
    serve = await dep.active("projector")
    await serve.kill9()
    await serve.start()
    return serve.name


async def restart_view(dep: Deployment) -> str:
    """kill -9 one LocalView's process and start it again: it resumes from its stored offset."""
    view = dep.rng.choice(dep.views)
    await view.kill9()
    await view.start()
    return view.name


FAULTS: dict[str, Fault] = {
    "kill-broker-log-leader": kill_log_leader,
    "kill-broker-txn-coordinator": kill_txn_coordinator,
    "kill-broker-any": kill_any_broker,
    "pause-broker-15s": pause_log_leader(15.0),
    "pause-broker-45s": pause_log_leader(45.0),
    "pause-active-writer": pause_writer,
    "pause-client": pause_client,
    "kill-projector": kill_projector,
    "restart-local-view": restart_view,
}


def schedule(seed: int, rounds: int, kinds: Sequence[str] | None = None) -> list[str]:
    """``rounds`` fault kinds: seeded shuffles of every kind in turn, so each appears once every cycle."""
    kinds = list(kinds or FAULTS)
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown:
        raise ChaosError(f"unknown fault kinds {unknown}; known: {', '.join(FAULTS)}")
    rng = random.Random(seed)
    plan: list[str] = []
    while len(plan) < rounds:
        cycle = list(kinds)
        rng.shuffle(cycle)
        plan.extend(cycle)
    return plan[:rounds]

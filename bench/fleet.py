"""The fleet scenario's member processes, and how their reports combine into the scenario's figures.

``python -m bench.fleet SPEC_JSON`` is one worker process of a fleet: it starts ``spec.members``
members at once, as a deploy starts that many services, then prints ``READY`` once each has its
first state (and ``STARTED <count>`` every few seconds until then). A member is either a :class:`~eventconfig.client.ConfigSubscriber` (``target``
``eventconfig``, with its own ``ConfigClient`` and its own Kafka connections,
``share_connections=False``, as a separate service would have) following ``spec.type``, or an etcd
watcher (``target`` ``etcd``: one ``aetcd`` client of its own that reads ``spec.key`` and then
watches it). Two lines on stdin follow: ``GO`` (start counting response records read and state
changes seen) and ``END <last version>`` (wait until every member saw that version, at most
``spec.settle_s``, then print ``RESULT <json>``, a :class:`FleetReport`).

Example::

    outcome = fleet_outcome(sent, reports, writer_reads=client.responses_read)
    start = start_outcome(spawned_at, reports)
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from eventconfig.client import ConfigSubscriber
from eventconfig.client.handlers import Config
from eventconfig.settings import Settings

from bench.report import percentile

FLEET_KEY = "setting"  # the one key every write of the fleet scenario changes
PROGRESS_S = 5.0


@dataclass
class FleetSpec:
    members: int
    type: str  # the type the subscribers follow (eventconfig); etcd watchers watch ``key``
    target: str = "eventconfig"  # or "etcd"
    etcd: str = ""  # host:port of the etcd peer
    key: str = ""  # the etcd key
    settle_s: float = 10.0  # after END: how long to wait for the last write's handlers
    start_timeout_s: float = 600.0


@dataclass
class FleetReport:
    """One worker's members: when each had its first state, and what they saw between GO and END."""

    members: int
    responses_read: int = 0  # response records all its clients' consumers received (eventconfig)
    handled: dict[str, list[float]] = field(default_factory=dict)  # version -> wall times a member saw it
    first: list[float] = field(default_factory=list)  # per member: wall time of its first state (0: never)
    rss_base_mib: float = 0.0  # the process's resident memory before its members started
    began: float = 0.0  # wall time the process began starting its members (its imports done)
    start_failures: int = 0  # member starts that failed and were started again (as a supervisor would)


@dataclass
class FleetOutcome:
    deliveries_per_write: float  # response records read per write, by every client together
    latencies_ms: list[float]  # per write seen by every member: from sending it to the last member seeing it
    incomplete: int  # writes that not every member saw
    missing_share: float  # of all (write, member) pairs, the share never seen before the settle time


def fleet_outcome(sent: dict[int, float], reports: list[FleetReport], writer_reads: int) -> FleetOutcome:
    """Combine the workers' reports with the writer's send times (``version -> wall time``)."""
    members = sum(r.members for r in reports)
    reads = writer_reads + sum(r.responses_read for r in reports)
    latencies, incomplete, seen = [], 0, 0
    for version, started in sorted(sent.items()):
        times = [t for r in reports for t in r.handled.get(str(version), [])]
        seen += min(len(times), members)
        if len(times) < members:
            incomplete += 1
            continue
        latencies.append((max(times) - started) * 1e3)
    expected = members * len(sent)
    return FleetOutcome(reads / max(len(sent), 1), latencies, incomplete,
                        (expected - seen) / expected if expected else 0.0)


@dataclass
class StartOutcome:
    all_s: float  # from spawning the workers until the last member had its first state (NaN: some never did)
    p50_s: float  # the median member's
    never: int  # members that never got their first state
    imports_s: float  # from spawning until the last worker process began starting its members
    failures: int  # member starts that failed and were started again


def start_outcome(spawned_at: float, reports: list[FleetReport]) -> StartOutcome:
    """How long a fleet spawned at ``spawned_at`` (wall time) took until its members had their first state."""
    firsts = [t for r in reports for t in r.first]
    started = [t - spawned_at for t in firsts if t > 0]
    never = len(firsts) - len(started)
    imports = max((r.began - spawned_at for r in reports), default=float("nan"))
    return StartOutcome(max(started) if started and not never else float("nan"), percentile(started, 50), never,
                        imports, sum(r.start_failures for r in reports))


# --- the worker process ----------------------------------------------------------------------------


def own_rss_mib() -> float:
    """This process's resident memory in MiB (Linux /proc; 0 elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return 0.0


class Members(abc.ABC):
    """The members of one worker process and what they saw; subclasses start them."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.counting = False
        self.handled: dict[int, list[float]] = {}
        self.seen = [0] * spec.members
        self.first = [0.0] * spec.members
        self.start_failures = 0

    def saw(self, index: int, version: int) -> None:
        """Member ``index`` now holds the state of ``version``."""
        now = time.time()
        if not self.first[index]:
            self.first[index] = now
        if self.counting:
            self.handled.setdefault(version, []).append(now)
        self.seen[index] = max(self.seen[index], version)

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        """Start every member at once; return when each has its first state. A start that fails is
        counted and tried again, as a supervisor restarts a service that failed to start."""
        deadline = time.monotonic() + self.spec.start_timeout_s

        async def one(index: int) -> None:
            while True:
                try:
                    return await self.start_one(index, stack)
                except Exception:  # noqa: BLE001 - counted; the deadline decides
                    self.start_failures += 1
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(1.0)

        progress = asyncio.create_task(self._progress())
        try:
            await asyncio.gather(*(one(i) for i in range(self.spec.members)))
        finally:
            progress.cancel()

    async def _progress(self) -> None:
        """``STARTED <members with their first state>`` every few seconds, so a start that times out
        still says how far it got."""
        while True:
            await asyncio.sleep(PROGRESS_S)
            print(f"STARTED {sum(1 for t in self.first if t)}", flush=True)

    @abc.abstractmethod
    async def start_one(self, index: int, stack: contextlib.AsyncExitStack) -> None:
        """Start member ``index`` (closed by ``stack``) and record its first state with :meth:`saw`."""

    def responses_read(self) -> int:
        return 0

    async def wait_for(self, version: int) -> None:
        deadline = time.monotonic() + self.spec.settle_s
        while min(self.seen, default=version) < version and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


class Subscribers(Members):
    """ConfigSubscribers, each with its own client and Kafka connections, following ``spec.type``."""

    def __init__(self, spec: FleetSpec) -> None:
        super().__init__(spec)
        self.subscribers: list[ConfigSubscriber] = []

    async def start_one(self, index: int, stack: contextlib.AsyncExitStack) -> None:
        async def handle(workspace: str, config: Config, version: int) -> None:
            self.saw(index, version)

        subscriber = ConfigSubscriber(Settings.load(), share_connections=False)  # as N separate services
        subscriber.on_change(handle, types=[self.spec.type])
        await subscriber.start(timeout=self.spec.start_timeout_s)
        stack.push_async_callback(subscriber.stop)
        self.subscribers.append(subscriber)

    def responses_read(self) -> int:
        return sum(s.client.responses_read for s in self.subscribers)


class Watchers(Members):
    """etcd watchers, each with an ``aetcd`` client of its own: read ``spec.key``, then watch it."""

    async def start_one(self, index: int, stack: contextlib.AsyncExitStack) -> None:
        import aetcd  # the optional ``bench`` extra

        host, _, port = self.spec.etcd.rpartition(":")
        client = await stack.enter_async_context(aetcd.Client(host=host, port=int(port)))
        key = self.spec.key.encode()
        current = await client.get(key)
        revision = current.mod_revision if current is not None else 0
        watch = await client.watch(key, start_revision=revision + 1)
        task = asyncio.create_task(self._follow(index, watch))
        stack.push_async_callback(_stop_watch, watch, task)
        self.saw(index, revision)

    async def _follow(self, index: int, watch: Any) -> None:
        async for event in watch:
            self.saw(index, event.kv.mod_revision)


async def _stop_watch(watch: Any, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    with contextlib.suppress(Exception):
        await watch.cancel()


async def _readline() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


async def main(spec: FleetSpec) -> None:
    rss_base, began = own_rss_mib(), time.time()
    members = Watchers(spec) if spec.target == "etcd" else Subscribers(spec)
    async with contextlib.AsyncExitStack() as stack:
        await members.start(stack)
        print("READY", flush=True)
        await _readline()  # GO
        baseline, members.counting = members.responses_read(), True
        last = int((await _readline()).split()[1])  # END <version>
        await members.wait_for(last)
        report = FleetReport(spec.members, members.responses_read() - baseline,
                             {str(v): times for v, times in members.handled.items()}, members.first, rss_base,
                             began, members.start_failures)
        print("RESULT " + json.dumps(asdict(report)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(FleetSpec(**json.loads(sys.argv[1]))))

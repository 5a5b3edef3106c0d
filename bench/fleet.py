"""The fleet scenario's parts: subscriber worker processes, and what a run of them measured.

``python -m bench.fleet SPEC_JSON`` is one worker process: it starts ``spec.subscribers``
:class:`~eventconfig.client.ConfigSubscriber` instances (each with its own ``ConfigClient`` and its own
Kafka connections, ``share_connections=False``, as separate services would have) that
follow ``spec.type``, prints ``READY``, and then answers two lines on stdin: ``GO`` (start counting:
response records read and handler calls) and ``END <last version>`` (wait until every subscriber's
handler saw that version, then print ``RESULT <json>``).

Example::

    outcome = fleet_outcome(sent, [FleetReport(**r) for r in results], writer_reads=client.responses_read)
    outcome.deliveries_per_write, outcome.latencies_ms
"""

from __future__ import annotations

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

START_CONCURRENCY = 10  # subscribers starting at once in one worker (each opens its own Kafka clients)


@dataclass
class FleetSpec:
    subscribers: int
    type: str
    settle_s: float = 10.0  # after END: how long to wait for the last write's handlers


@dataclass
class FleetReport:
    """One worker's counts between GO and END."""

    subscribers: int
    responses_read: int = 0  # response records all its clients' consumers received
    handled: dict[str, list[float]] = field(default_factory=dict)  # version -> wall times a handler ran


@dataclass
class FleetOutcome:
    deliveries_per_write: float
    latencies_ms: list[float]  # per write: from sending it to the last subscriber's handler call
    incomplete: int  # writes that not every subscriber handled


def fleet_outcome(sent: dict[int, float], reports: list[FleetReport], writer_reads: int) -> FleetOutcome:
    """Combine the workers' reports with the writer's send times (``version -> wall time``)."""
    subscribers = sum(r.subscribers for r in reports)
    reads = writer_reads + sum(r.responses_read for r in reports)
    latencies, incomplete = [], 0
    for version, started in sorted(sent.items()):
        times = [t for r in reports for t in r.handled.get(str(version), [])]
        if len(times) < subscribers:
            incomplete += 1
            continue
        latencies.append((max(times) - started) * 1e3)
    return FleetOutcome(reads / max(len(sent), 1), latencies, incomplete)


class _Fleet:
    def __init__(self, settings: Settings, spec: FleetSpec) -> None:
        self.settings = settings
        self.spec = spec
        self.subscribers: list[ConfigSubscriber] = []
        self.counting = False
        self.handled: dict[int, list[float]] = {}
        self.seen = [0] * spec.subscribers

    def _handler(self, index: int) -> Any:
        async def handle(workspace: str, config: Config, version: int) -> None:
            if self.counting:
                self.handled.setdefault(version, []).append(time.time())
            self.seen[index] = max(self.seen[index], version)
        return handle

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def one(index: int) -> ConfigSubscriber:
            subscriber = ConfigSubscriber(self.settings, share_connections=False)  # as N separate services
            subscriber.on_change(self._handler(index), types=[self.spec.type])
            async with gate:
                await subscriber.start(timeout=120)
            stack.push_async_callback(subscriber.stop)
            return subscriber

        self.subscribers = list(await asyncio.gather(*(one(i) for i in range(self.spec.subscribers))))

    def responses_read(self) -> int:
        return sum(s.client.responses_read for s in self.subscribers)

    async def wait_for(self, version: int) -> None:
        deadline = time.monotonic() + self.spec.settle_s
        while min(self.seen, default=version) < version and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


async def _readline() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


async def main(spec: FleetSpec) -> None:
    async with contextlib.AsyncExitStack() as stack:
        fleet = _Fleet(Settings.load(), spec)
        await fleet.start(stack)
        print("READY", flush=True)
        await _readline()  # GO
        baseline, fleet.counting = fleet.responses_read(), True
        last = int((await _readline()).split()[1])  # END <version>
        await fleet.wait_for(last)
        report = FleetReport(spec.subscribers, fleet.responses_read() - baseline,
                             {str(v): times for v, times in fleet.handled.items()})
        print("RESULT " + json.dumps(asdict(report)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(FleetSpec(**json.loads(sys.argv[1]))))

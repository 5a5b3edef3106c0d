"""``python -m chaos.load SPEC_JSON``: the writers and readers of a chaos run, recording every call.

Each writer has its own :class:`ConfigClient`. Plain writers put unique values to keys of their own;
compare-and-set writers race on a few shared keys (read the item, put with ``if_version``). Readers
pick an acknowledged write and read its key plainly, with ``min_version`` at its version
(read-your-writes), or one past the newest (a parked read). Every call is appended to the events
file (one JSON line: its kind, key, value, version, and when it was sent and answered) the moment
its outcome is known, so a later crash of anything loses no record; a write without a response is
recorded as unanswered (its outcome unknown). Several load processes may run side by side, each
with its own ``first_writer`` (one of them is the client a fault pauses).

Protocol: the process prints ``READY`` once its clients are connected; a line ``stop`` on stdin
ends the loops (each finishes the request in flight); it then prints ``DONE <json>`` (counters).
The settings come from the ``EVENTCONFIG_*`` environment.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from eventconfig.client import ConfigClient, ConfigItem
from eventconfig.errors import Conflict, EventConfigError, ReadTimeout
from eventconfig.settings import Settings

TYPE = "t"
CAS_KEYS = 3


@dataclass
class LoadSpec:
    events: str  # the JSONL file of acknowledged writes
    writers: int = 8
    cas_writers: int = 3
    readers: int = 3
    workspaces: int = 2
    keys_per_writer: int = 8
    seed: int = 1
    first_writer: int = 0  # this process's writers are first_writer, first_writer + 1, ...
    plain_reads: float = 0.5  # the share of reads without min_version
    think_s: tuple[float, float] = (0.1, 0.3)
    deadline_s: float = 60.0  # a response later than this counts as a wait that never ends


def workspace_of(writer: int, workspaces: int) -> str:
    return f"chaos-{writer % workspaces}"


@dataclass
class Counters:
    unknown: int = 0  # a write with no response within the deadline: its outcome is unknown
    conflicts: int = 0
    reads: int = 0
    stale: int = 0
    unanswered: int = 0
    parked_timeouts: int = 0  # a read one past the newest version answered "timeout" (allowed)
    # A read of an acknowledged version answered "timeout": the answering writer could not confirm
    # its view was current (a fenced one, or the log unreachable) — unavailable, never stale data.
    read_timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "errors"}, "errors": dict(self.errors)}


class Load:
    """The writer and reader loops of one process, sharing what has been acknowledged."""

    def __init__(self, spec: LoadSpec, settings: Settings, events: IO[str]) -> None:
        self.spec = spec
        self.settings = settings
        self.events = events
        self.counters = Counters()
        self.acked: list[dict[str, Any]] = []
        self.stopping = asyncio.Event()

    def _client(self) -> ConfigClient:
        return ConfigClient(self.settings, timeout=self.spec.deadline_s, actor="chaos")

    async def run(self, ready: asyncio.Event) -> None:
        clients = [self._client() for _ in range(self.spec.writers + 1)]
        await asyncio.gather(*(c.start() for c in clients))
        try:
            ready.set()
            first = self.spec.first_writer
            loops = [self._writer(first + i, i, clients[i]) for i in range(self.spec.writers)]
            loops += [self._reader(first + i, clients[-1]) for i in range(self.spec.readers)]
            await asyncio.gather(*loops)
        finally:
            await asyncio.gather(*(c.stop() for c in clients))

    def _record(self, call: dict[str, Any]) -> None:
        self.events.write(json.dumps(call) + "\n")
        self.events.flush()

    async def _writer(self, index: int, local: int, client: ConfigClient) -> None:
        rng = random.Random(self.spec.seed * 1000 + index)
        cas = local >= self.spec.writers - self.spec.cas_writers
        workspace = workspace_of(index, self.spec.workspaces)
        seq = 0
        while not self.stopping.is_set():
            seq += 1
            call: dict[str, Any] = {"client": index, "workspace": workspace, "value": f"w{index}:{seq}"}
            try:
                if cas:
                    call.update(kind="cas", key=f"cas-{rng.randrange(CAS_KEYS)}")
                    call["base"] = await self._read(index, client, workspace, call["key"])
                    call["invoked"] = time.time()
                    call["version"] = await client.put(workspace, TYPE, call["key"], call["value"],
                                                       if_version=call["base"])
                else:
                    call.update(kind="write", key=f"w{index}-{seq % self.spec.keys_per_writer}", base=None,
                                invoked=time.time())
                    call["version"] = await client.put(workspace, TYPE, call["key"], call["value"])
            except Conflict:
                self.counters.conflicts += 1
            except EventConfigError as exc:
                self._failed(exc, call)
            else:
                call["completed"] = time.time()
                self._record(call)
                self.acked.append(call)
            await asyncio.sleep(rng.uniform(*self.spec.think_s))

    async def _read(self, index: int, client: ConfigClient, workspace: str, key: str) -> int:
        """A plain read of a compare-and-set writer (recorded); the version it saw, 0 for none."""
        invoked = time.time()
        item = await client.get_item(workspace, TYPE, key)
        self._record({"client": index, "kind": "read", "workspace": workspace, "key": key,
                      "value": None if item is None else item.value, "version": _version(item),
                      "invoked": invoked, "completed": time.time()})
        return _version(item)

    def _failed(self, exc: EventConfigError, call: dict[str, Any]) -> None:
        """A write without an answer may still be applied: it is unknown, never acknowledged."""
        self.counters.unknown += 1
        self.counters.errors[type(exc).__name__] += 1
        if "invoked" in call:  # sent (a failed read before a compare-and-set sends nothing)
            self._record({**call, "version": None, "completed": None})

    async def _reader(self, index: int, client: ConfigClient) -> None:
        rng = random.Random(self.spec.seed * 1000 + 500 + index)
        while not self.stopping.is_set():
            await asyncio.sleep(rng.uniform(*self.spec.think_s))
            if not self.acked:
                continue
            ack = rng.choice(self.acked[-200:])
            plain, ahead = rng.random() < self.spec.plain_reads, rng.random() < 0.2
            wanted = None if plain else self.acked[-1]["version"] + 1 if ahead else ack["version"]
            self.counters.reads += 1
            invoked = time.time()
            try:
                item = await client.get_item(ack["workspace"], TYPE, ack["key"], min_version=wanted)
            except ReadTimeout as exc:
                if str(exc).startswith("no response"):
                    self.counters.unanswered += 1
                elif ahead:
                    self.counters.parked_timeouts += 1
                else:
                    self.counters.read_timeouts += 1
                continue
            except EventConfigError as exc:
                self.counters.errors[f"read {type(exc).__name__}"] += 1
                continue
            self._record({"client": index, "kind": "read", "workspace": ack["workspace"], "key": ack["key"],
                          "value": None if item is None else item.value, "version": _version(item),
                          "invoked": invoked, "completed": time.time(), "min_version": wanted})
            if wanted is not None and (item is None or _version(item) < ack["version"] or (
                    item.version == ack["version"] and item.value != ack["value"])):
                self.counters.stale += 1


def _version(item: ConfigItem | None) -> int:
    return 0 if item is None or item.version is None else item.version


async def main(spec: LoadSpec) -> None:
    with open(spec.events, "a") as events:
        load = Load(spec, Settings.load(), events)
        ready = asyncio.Event()
        task = asyncio.create_task(load.run(ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # a start failure ends the process with its error
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() not in ("stop", ""):
            pass
        load.stopping.set()
        await task
    print("DONE " + json.dumps(load.counters.to_json()), flush=True)


if __name__ == "__main__":
    raw = json.loads(sys.argv[1])
    asyncio.run(main(LoadSpec(**{**raw, "think_s": tuple(raw.get("think_s", (0.1, 0.3)))})))

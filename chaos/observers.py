"""``python -m chaos.observers SPEC_JSON``: the ConfigSubscribers or one LocalView of a chaos run.

Every observer's handler records the last state it was handed per workspace and counts calls that
go back in version. Protocol: ``READY`` once every observer started; then a line with a version V
on stdin makes the process wait (bounded) until every observer reached V, write the observers'
states to the ``out`` file as JSON, print ``DONE`` and exit. The settings come from ``EVENTCONFIG_*``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventconfig.client import ConfigClient, ConfigSubscriber, LocalView
from eventconfig.client.handlers import Config
from eventconfig.settings import Settings

from chaos.load import TYPE


@dataclass
class ObserverSpec:
    kind: str  # "subscribers" or "view"
    out: str
    count: int = 1  # subscribers in this process
    clients: int = 4  # ConfigClients the subscribers share
    path: str = ""  # the view's folder
    catch_up_s: float = 120.0


class Recorder:
    """A handler that keeps the latest state per workspace and notices calls out of version order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state: dict[str, dict[str, str]] = {}
        self.versions: dict[str, int] = {}
        self.out_of_order = 0

    async def __call__(self, workspace: str, config: Config, version: int) -> None:
        if version <= self.versions.get(workspace, 0):
            self.out_of_order += 1
        self.versions[workspace] = version
        self.state[workspace] = dict(config.get(TYPE, {}))


async def run(spec: ObserverSpec) -> None:
    settings = Settings.load()
    clients = [ConfigClient(settings) for _ in range(spec.clients if spec.kind == "subscribers" else 0)]
    observers: list[ConfigSubscriber | LocalView] = []
    recorders: list[Recorder] = []
    try:
        await asyncio.gather(*(c.start() for c in clients))
        for index in range(spec.count if spec.kind == "subscribers" else 1):
            observer: ConfigSubscriber | LocalView
            if spec.kind == "subscribers":
                observer = ConfigSubscriber(settings, client=clients[index % len(clients)])
            else:
                observer = LocalView(settings, Path(spec.path))
            recorder = Recorder(f"subscriber-{index}" if spec.kind == "subscribers"
                                else f"view-{Path(spec.path).name}")
            observer.on_change(recorder, types=[TYPE])
            observers.append(observer)
            recorders.append(recorder)
        await asyncio.gather(*(o.start() for o in observers))
        print("READY", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            return
        target = int(line)
        await _caught_up(observers, target, spec.catch_up_s)
        Path(spec.out).write_text(json.dumps([_dump(o, r) for o, r in zip(observers, recorders)]))
        print("DONE", flush=True)
    finally:
        await asyncio.gather(*(o.stop() for o in observers), return_exceptions=True)
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)


async def _caught_up(observers: list[ConfigSubscriber | LocalView], target: int, timeout: float) -> None:
    """Wait until every observer reached ``target``; on the deadline the states are dumped as they are."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(o.version < target for o in observers) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)


def _dump(observer: ConfigSubscriber | LocalView, recorder: Recorder) -> dict[str, Any]:
    return {"name": recorder.name, "version": observer.version, "state": recorder.state,
            "out_of_order": recorder.out_of_order}


if __name__ == "__main__":
    asyncio.run(run(ObserverSpec(**json.loads(sys.argv[1]))))

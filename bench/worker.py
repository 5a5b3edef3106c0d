"""``python -m bench.worker SPEC_JSON``: one client process of a load run.

Protocol on stdin/stdout: the worker connects its ConfigClient, prints ``READY``, reads one line with
the shared start time (wall clock), runs the loops of :mod:`bench.load` and prints ``RESULT <json>``.
The settings come from the ``EVENTCONFIG_*`` environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace

from eventconfig.client import ConfigClient
from eventconfig.settings import Settings

from bench.load import LoadSpec, run_loops


async def main(spec: LoadSpec) -> None:
    async with ConfigClient(Settings.load(), timeout=30.0) as client:
        print("READY", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        stats = await run_loops(client.settings, replace(spec, start_at=float(line)), client=client)
    print("RESULT " + json.dumps(stats.to_dict()), flush=True)


if __name__ == "__main__":
    asyncio.run(main(LoadSpec(**json.loads(sys.argv[1]))))

"""``python -m bench.worker SPEC_JSON``: one client process of a load run.

Protocol on stdin/stdout: the worker opens its clients (``spec.clients`` of them, eventconfig or
etcd), prints ``READY``, reads one line with the shared start time (wall clock), runs the loops of
:mod:`bench.load` and prints ``RESULT <json>``. eventconfig settings come from the ``EVENTCONFIG_*``
environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace

from eventconfig.settings import Settings

from bench.load import LoadSpec, open_targets, run_loops


async def main(spec: LoadSpec) -> None:
    async with open_targets(spec, Settings.load()) as targets:
        print("READY", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        stats = await run_loops(replace(spec, start_at=float(line)), targets)
    print("RESULT " + json.dumps(stats.to_dict()), flush=True)


if __name__ == "__main__":
    asyncio.run(main(LoadSpec(**json.loads(sys.argv[1]))))

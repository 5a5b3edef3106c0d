"""Helpers shared by integration tests: service processes as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from eventconfig.settings import Settings


def start_process(settings: Settings, command: str, data_dir: Path, log_path: Path,
                  *args: str) -> subprocess.Popen[bytes]:
    """``python -m eventconfig <command> [args]`` for this test's deployment, logging to ``log_path``."""
    env = {**os.environ, "EVENTCONFIG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "EVENTCONFIG_TOPIC_PREFIX": settings.topic_prefix, "EVENTCONFIG_DATA_DIR": str(data_dir)}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "eventconfig", command, *args], env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)


async def wait_serving(wire, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Wait until some writer answers requests."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await wire.call("config", "probe", timeout=2)
            return
        except asyncio.TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise

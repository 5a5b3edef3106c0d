"""Helpers shared by integration tests: service processes as real subprocesses, and waiting on conditions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import inspect
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from eventconfig.settings import Settings


def start_process(settings: Settings, command: str, data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m eventconfig <command>`` for this test's deployment, logging to ``log_path``."""
    env = {**os.environ, "EVENTCONFIG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "EVENTCONFIG_TOPIC_PREFIX": settings.topic_prefix, "EVENTCONFIG_DATA_DIR": str(data_dir)}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "eventconfig", command], env=env, stdout=log, stderr=log,
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


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout: float, message: str,
                     *, interval: float = 0.05) -> None:
    """Re-check ``condition`` (plain or async) until it holds; after ``timeout`` s fail with what did not happen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"within {timeout:g} s: {message}")
        await asyncio.sleep(interval)

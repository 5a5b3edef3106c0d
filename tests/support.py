"""Helpers shared by tests: service processes and view-lock holders as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.service import ConfigService
from eventconfig.settings import Settings


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[ConfigService]:
    """A config service (writer + view + projector) on freshly created topics, active when entered."""
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)
    running = ConfigService(settings)
    await running.start()
    try:
        await running.writer.wait_active(60)
        if running.projector is not None:
            await running.projector.wait_active(60)
        yield running
    finally:
        await running.stop()


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


@contextmanager
def view_held_elsewhere(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process opens the view at ``path`` and holds its lock until the block ends (or until the
    block calls ``release(holder)``)."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from eventconfig.view import ViewStore; s = ViewStore.open(sys.argv[1]); "
        "print('open', flush=True); sys.stdin.read()"), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open", "the holder did not open"
        yield holder
    finally:
        release(holder)


def release(holder: subprocess.Popen[str]) -> None:
    """Let a :func:`view_held_elsewhere` process close the view and exit."""
    if holder.returncode is None:
        holder.communicate("", timeout=30)

"""Helpers shared by tests: service processes and CLI commands as real subprocesses, waiting on conditions."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from eventconfig.settings import Settings

CLI_DEADLINE_S = 30  # far above what a failing command needs; a hang fails the test, not the suite


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


def eventconfig(bootstrap: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
                stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``python -m eventconfig`` to completion with only the given environment of eventconfig's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTCONFIG_", "KAFKA_"))}
    return subprocess.run([sys.executable, "-m", "eventconfig", "--bootstrap-servers", bootstrap, *args],
                          env={**clean, **(env or {})}, cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=CLI_DEADLINE_S)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """Exit ``code``, exactly one ``error:`` line on stderr holding ``fragments``, no traceback or leak warning."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), \
        f"expected exactly one 'error:' line on stderr, got:\n{result.stderr}"
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr

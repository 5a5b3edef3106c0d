"""Helpers shared by tests: service processes, view-lock holders and CLI commands as real subprocesses,
waiting on conditions."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.process import ConfigService
from eventconfig.settings import Settings

CLI_DEADLINE_S = 30  # far above what a failing command needs; a hang fails the test, not the suite


class Clock:
    """A clock a unit test moves by hand (``clock.now = ...``), for code that takes ``clock=``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def resend(settings: Settings, record: Any) -> None:
    """Append a captured request record to ``settings``' request topic again, byte for byte."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.request, record.value, headers=list(record.headers))
    finally:
        await producer.stop()


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
           "EVENTCONFIG_TOPIC_PREFIX": settings.topic_prefix, "EVENTCONFIG_DATA_DIR": str(data_dir),
           "EVENTCONFIG_SECURITY_PROTOCOL": settings.security_protocol}
    if settings.sasl_mechanism:  # a secure broker: the process connects as the same principal
        env.update(EVENTCONFIG_SASL_MECHANISM=settings.sasl_mechanism, EVENTCONFIG_SASL_USERNAME=settings.sasl_username,
                   EVENTCONFIG_SASL_PASSWORD=settings.sasl_password)
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "eventconfig", command, *args], env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)


def start_services(settings: Settings, tmp_path: Path, names: tuple[str, ...] = ("a", "b")
                   ) -> dict[subprocess.Popen[bytes], Path]:
    """One ``serve`` process per name, each with its own data dir and log file: process -> log path."""
    return {start_process(settings, "serve", tmp_path / name, tmp_path / f"{name}.log"): tmp_path / f"{name}.log"
            for name in names}


def activations(log: Path, role: str = "writer") -> int:
    """How often a ``serve`` process logged taking ``role`` (its "active" line; the "joined group; waiting
    to become active" line does not count)."""
    return log.read_text().count(f"eventconfig.kafka.exclusive active role={role} ")


async def replace_paused_writer(settings: Settings, wire, processes: list, tmp_path: Path  # type: ignore[no-untyped-def]
                                ) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], dict[subprocess.Popen[bytes], Path]]:
    """Two ``serve`` processes; "old" is written, the active writer is paused (SIGSTOP) until the standby
    took the role, "new" is written through the successor, and the paused one resumes as a zombie with
    its stale state. Returns (the resumed zombie, the successor, each process's log)."""
    logs = start_services(settings, tmp_path)
    processes.extend(logs)
    await wait_serving(wire)
    assert (await wire.put("w", ("t", "k", "old")))["error"] is None
    paused = next(p for p, log in logs.items() if activations(log))
    successor = next(p for p in logs if p is not paused)
    paused.send_signal(signal.SIGSTOP)  # between the write and what follows: it keeps its stale state
    await wait_until(lambda: activations(logs[successor]) > 0, 60,
                     "the standby did not take the writer role from the paused one")
    assert (await wire.put("w", ("t", "k", "new"), timeout=60))["error"] is None
    paused.send_signal(signal.SIGCONT)  # a zombie now, until it hears of the rebalance
    return paused, successor, logs


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

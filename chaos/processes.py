"""The child processes of a chaos run: service processes and the line-protocol client processes.

Example::

    serve = Child("serve-a", [sys.executable, "-m", "eventconfig", "serve"], env, workdir / "serve-a.log")
    await serve.start()
    await serve.kill9(); await serve.start()      # same data dir: a crash and a restart
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from eventconfig.errors import EventConfigError
from eventconfig.settings import Settings


class ChaosError(EventConfigError):
    """The chaos run itself could not go on (a process did not start, a wait ran out)."""


def service_env(settings: Settings, data_dir: Path, base: dict[str, str]) -> dict[str, str]:
    """The ``EVENTCONFIG_*`` environment of a process of this run's deployment."""
    return {**base, "EVENTCONFIG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "EVENTCONFIG_TOPIC_PREFIX": settings.topic_prefix, "EVENTCONFIG_DATA_DIR": str(data_dir),
            "EVENTCONFIG_REPLICATION_FACTOR": str(settings.replication_factor),
            "EVENTCONFIG_MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas)}


class Child:
    """One restartable child process; stderr (and stdout unless ``protocol``) go to its log file.

    A ``protocol`` child talks on stdin/stdout: it prints ``READY`` when started and ``DONE ...``
    when it finished what it was told.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 protocol: bool = False) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.protocol = protocol
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0  # wall clock of the last start: older log lines are a previous life's

    @classmethod
    def python(cls, name: str, module: str, args: list[str], env: dict[str, str], log_path: Path,
               protocol: bool = False) -> Child:
        return cls(name, [sys.executable, "-m", module, *args], env, log_path, protocol)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = 120.0) -> None:
        self.started_at = time.time()
        with open(self.log_path, "ab") as log:
            pipe = asyncio.subprocess.PIPE if self.protocol else log
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, stdin=asyncio.subprocess.PIPE if self.protocol else None,
                stdout=pipe, stderr=log)
        if self.protocol:
            await self.expect("READY", timeout)

    async def expect(self, word: str, timeout: float) -> str:
        """The rest of the first stdout line starting with ``word``; fails on exit or deadline."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await self.proc.stdout.readline()).decode()
                    if not line:
                        raise ChaosError(f"{self.name} exited before {word}; see {self.log_path}")
                    if line.startswith(word):
                        return line[len(word):].strip()
        except TimeoutError:
            raise ChaosError(f"{self.name} did not say {word} within {timeout:.0f} s; see {self.log_path}") from None

    async def tell(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        await self.wait(30)

    async def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            return None

    async def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (and SIGCONT, should it be paused), SIGKILL after ``timeout``."""
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)
        if await self.wait(timeout) is None:
            await self.kill9()

    def activations(self, role: str) -> list[tuple[float, float]]:
        """(when, how long it took) of each time this process (in any of its lives) logged taking ``role``."""
        found: list[tuple[float, float]] = []
        if not self.log_path.exists():
            return found
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"active"' not in line:
                continue
            try:
                event: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if event.get("msg") == "active" and event.get("role") == role:
                found.append((float(event["ts"]), float(event.get("took_s", 0.0))))
        return found

    def last_active(self, role: str) -> float:
        """When this process (since its last start) logged that it took ``role``; 0 if never."""
        return max((ts for ts, _ in self.activations(role) if ts >= self.started_at), default=0.0)

"""The benchmark's environment: a broker, fresh deployments (unique topic prefixes), the service process.

Example::

    with broker_for_bench(workdir) as broker:          # EVENTCONFIG_BOOTSTRAP_SERVERS or an own LocalBroker
        settings = deployment(broker.bootstrap, workdir, "svc")
        await create_deployment_topics(settings)
        service = ServiceProcess(settings, workdir / "probe.jsonl"); await service.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import re
import socket
import urllib.request
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventconfig.client import ConfigClient
from eventconfig.kafka.topics import admin_client, create_topics
from eventconfig.localbroker import LocalBroker
from eventconfig.settings import Settings

RUN_ID = uuid.uuid4().hex[:8]


@dataclass
class BrokerHandle:
    bootstrap: str
    description: str


def reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when the first bootstrap address accepts a TCP connection."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
        return True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def broker_for_bench(workdir: Path) -> Iterator[BrokerHandle]:
    """The broker at EVENTCONFIG_BOOTSTRAP_SERVERS if reachable, else an own LocalBroker in ``workdir``."""
    given = os.environ.get("EVENTCONFIG_BOOTSTRAP_SERVERS", "")
    if given and reachable(given):
        yield BrokerHandle(given, f"existing broker at {given}")
        return
    broker = LocalBroker(workdir / "broker", heap_mb=768)
    bootstrap = broker.start()  # sync: it runs its own event loop for the readiness probe
    note = f" ({given} unreachable)" if given else ""
    try:
        yield BrokerHandle(bootstrap, f"own LocalBroker at {bootstrap}{note}")
    finally:
        broker.stop()


def deployment(bootstrap: str, workdir: Path, role: str) -> Settings:
    """Settings of a fresh deployment: unique topic prefix per run and role, own data dir."""
    prefix = f"bench-{RUN_ID}-{role}"
    return Settings.load({"bootstrap_servers": bootstrap, "topic_prefix": prefix,
                          "data_dir": workdir / prefix}, env={})


async def create_deployment_topics(settings: Settings) -> None:
    async with admin_client(settings) as admin:
        await create_topics(admin, settings)


async def delete_deployment_topics(settings: Settings) -> None:
    """Remove a deployment's topics (a shared broker keeps no benchmark data)."""
    names = [getattr(settings.topics, f) for f in ("request", "response", "log", "history", "notify", "dlq")]
    with contextlib.suppress(Exception):
        async with admin_client(settings) as admin:
            await admin.delete_topics(names)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that points an eventconfig process at ``settings``' deployment (and its metrics port)."""
    return {**os.environ, "EVENTCONFIG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "EVENTCONFIG_TOPIC_PREFIX": settings.topic_prefix, "EVENTCONFIG_DATA_DIR": str(settings.data_dir),
            **({"EVENTCONFIG_METRICS_PORT": str(settings.metrics_port)} if settings.metrics_port else {})}


def free_port() -> int:
    """A TCP port nothing listens on now, for a process's metrics."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_READ_ANSWERS = re.compile(r'^eventconfig_read_topic_answers_total\{[^}]*\} (\S+)$', re.M)
_READ_PARTITIONS = re.compile(r'^eventconfig_read_topic_partitions (\S+)$', re.M)


def read_topic_answers(port: int) -> int:
    """Reads of the read topic the process serving metrics on ``port`` answered (every outcome)."""
    return _metric_sum(port, _READ_ANSWERS)


def read_topic_partitions(port: int) -> int:
    """Partitions of the read topic the readers' group gives the process serving metrics on ``port`` now."""
    return _metric_sum(port, _READ_PARTITIONS)


def _metric_sum(port: int, pattern: re.Pattern[str]) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        return int(sum(float(n) for n in pattern.findall(page.read().decode())))


class ServiceProcess:
    """The config service in its own process (``python -m bench.probe_service``: ConfigService plus a
    per-batch timing log), so the load and the service do not share an event loop or a GIL."""

    def __init__(self, settings: Settings, probe_file: Path, log_file: Path, projector: bool = True) -> None:
        self.settings = settings
        self.projector = projector
        self.probe_file = probe_file
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 90.0) -> float:
        """Start the process and wait until it answers a request; returns the seconds it took."""
        started = time.monotonic()
        env = {**settings_env(self.settings), "BENCH_PROBE_FILE": str(self.probe_file),
               "BENCH_PROJECTOR": "1" if self.projector else "0"}
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "bench.probe_service"], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        await wait_answering(self.settings, timeout, self._proc)
        return time.monotonic() - started

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else 0

    def stop(self, timeout: float = 20.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def batches(self, since: float, until: float) -> list[dict[str, Any]]:
        """The probe's per-batch records whose commit ended in [since, until] (wall clock)."""
        if not self.probe_file.exists():
            return []
        found = []
        for line in self.probe_file.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if since <= entry["t"] <= until:
                    found.append(entry)
        return found


async def wait_answering(settings: Settings, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll with ``version()`` requests until the service answers (its writer is active)."""
    deadline = time.monotonic() + timeout
    async with ConfigClient(settings, timeout=2.0) as client:
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the service process exited with code {proc.returncode}")
            try:
                await client.version()
                return
            except Exception:  # noqa: BLE001 - not ready yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

"""A one-member etcd on free loopback ports, for the benchmark's peer figures (``--peer etcd``).

:meth:`EtcdServer.start` runs the ``etcd`` binary found on PATH (Debian package ``etcd-server``;
``make etcd`` installs it) with its data in the run's temp folder and fsync on (etcd's default),
and waits until a put through ``aetcd`` (the ``bench`` extra) succeeds.

Example::

    async with EtcdServer.start(workdir) as etcd:
        print(etcd.endpoint, etcd.pid)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.load import LoadSpec, open_targets


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (no binary, or it did not start)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EtcdServer:
    """A running single-member etcd; ``endpoint`` is ``127.0.0.1:PORT``."""

    endpoint: str
    process: subprocess.Popen[bytes]
    version: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, workdir: Path, timeout: float = 30.0) -> AsyncIterator[EtcdServer]:
        binary = shutil.which("etcd")
        if binary is None:
            raise PeerUnavailable("no `etcd` on PATH (Debian: apt-get install etcd-server)")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        client, peer = _free_port(), _free_port()
        data = workdir / "etcd"
        data.mkdir(parents=True, exist_ok=True)
        args = [binary, "--name", "bench", "--data-dir", str(data),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "error"]
        with open(workdir / "etcd.log", "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = cls(f"127.0.0.1:{client}", process, version)
        try:
            await _wait_answering(server, timeout)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_answering(server: EtcdServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    spec = LoadSpec(op="put", loops=1, warmup=0, duration=0, start_at=0, target="etcd", etcd=server.endpoint)
    while True:
        if server.process.poll() is not None:
            raise PeerUnavailable(f"etcd exited with code {server.process.returncode} (see etcd.log)")
        try:
            async with open_targets(spec) as (target, *_):
                await target.put("ready", "1")
                return
        except Exception as exc:  # noqa: BLE001 - not up yet; the deadline below decides
            if time.monotonic() > deadline:
                raise PeerUnavailable(f"etcd did not answer within {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(0.2)

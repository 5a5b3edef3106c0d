"""The ``sse`` scenario: many ``/v1/watch`` streams on one gateway process, and writes that poke them.

``python -m bench.sse SPEC_JSON`` is one stream-reader process: it opens ``spec.streams`` event
streams on the gateway at ``spec.port`` (raw HTTP/1.1 on asyncio streams, so the readers cost little),
prints ``READY`` once each got its ``ready`` event, records the wall time each poke reaches each
stream, and on ``END <last version>`` waits until every stream saw that version (at most
``spec.settle_s``) and prints ``RESULT <json>``.

:func:`sse_streams` runs the scenario: a gateway process on the bench deployment, the reader
processes, idle and busy windows for the gateway's CPU and resident memory, then N writes.

Example::

    rows = await sse_streams(settings, service_pid, streams=1000, procs=4, writes=20)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from eventconfig.client import ConfigClient
from eventconfig.settings import Settings

from bench import cpu
from bench.env import settings_env
from bench.report import Goal, Row, percentile

OPEN_CONCURRENCY = 50  # streams one reader process opens at once
_POKE = re.compile(rb"^id: (\d+)$")


@dataclass
class StreamSpec:
    port: int
    streams: int
    settle_s: float = 15.0


# --- the reader process ----------------------------------------------------------------------------


class StreamReader:
    """One event stream: the (version, wall time) of each poke it received."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []
        self.ready = asyncio.Event()
        self.last = 0

    async def run(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/watch HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        pending_id: int | None = None
        try:
            while line := await reader.readline():
                if (found := _POKE.match(line.rstrip(b"\r\n"))) is not None:
                    pending_id = int(found.group(1))
                elif line.startswith(b"event: ") and pending_id is not None:
                    if line.startswith(b"event: poke"):
                        self.arrivals.append((pending_id, time.time()))
                    self.last = max(self.last, pending_id)
                    self.ready.set()
                    pending_id = None
        finally:
            writer.close()


async def _reader_main(spec: StreamSpec) -> None:
    streams = [StreamReader() for _ in range(spec.streams)]
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, spec.streams, OPEN_CONCURRENCY):
        chunk = streams[start:start + OPEN_CONCURRENCY]
        tasks.extend(asyncio.create_task(s.run(spec.port)) for s in chunk)
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in chunk)), 120)
    print("READY", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    last = int(line.split()[1])
    deadline = time.monotonic() + spec.settle_s
    while any(s.last < last for s in streams) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    result = {"streams": spec.streams, "complete": sum(s.last >= last for s in streams),
              "arrivals": [s.arrivals for s in streams]}
    print("RESULT " + json.dumps(result), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- the scenario ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resident_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def gauge(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


class GatewayProcess:
    """``eventconfig gateway`` on a free port of this machine, for the deployment of ``settings``."""

    def __init__(self, settings: Settings, log_file: Path) -> None:
        self.port = _free_port()
        with open(log_file, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "eventconfig", "gateway", "--port", str(self.port)],
                                         env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    async def ready(self, http: httpx.AsyncClient, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway process exited with code {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway was not ready within {timeout} s")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _readers(port: int, streams: int, procs: int, env: dict[str, str]) -> list[asyncio.subprocess.Process]:
    counts = [streams // procs + (i < streams % procs) for i in range(procs)]
    workers = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sse", json.dumps(asdict(StreamSpec(port, n))), env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE) for n in counts if n]
    for worker in workers:
        assert worker.stdout is not None
        line = (await asyncio.wait_for(worker.stdout.readline(), 300)).decode().strip()
        if line != "READY":
            raise RuntimeError(f"stream reader failed to start: {line!r}")
    return workers


async def _results(workers: list[asyncio.subprocess.Process], last: int) -> list[dict[str, Any]]:
    results = []
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"END {last}\n".encode())
        await worker.stdin.drain()
    for worker in workers:
        out, _ = await asyncio.wait_for(worker.communicate(), 120)
        lines = [ln for ln in out.decode().splitlines() if ln.startswith("RESULT ")]
        if not lines:
            raise RuntimeError("a stream reader printed no RESULT")
        results.append(json.loads(lines[-1][7:]))
    return results


@dataclass
class Window:
    """Percent of one core over a window: the gateway's CPU, the time it was ready but waited for a
    core, the stream readers' CPU, and the whole machine's (summed over its cores)."""

    gateway: float
    gateway_waited: float
    readers: float
    machine: float

    def text(self) -> str:
        return (f"gateway {self.gateway:.1f} % of a core (and {self.gateway_waited:.0f} % ready but waiting "
                f"for a core), stream readers {self.readers:.0f} %, machine {self.machine:.0f} % busy")


async def _window(pid: int, readers: list[int], seconds: float) -> Window:
    pids = {"gateway": pid, **{f"reader{i}": p for i, p in enumerate(readers)}}
    before, waited = cpu.sample(pids), cpu.run_queue_wait(pid)
    await asyncio.sleep(seconds)
    used, waited = cpu.usage(before, cpu.sample(pids)), cpu.run_queue_wait(pid) - waited
    return Window(used["gateway_pct"], 100 * waited / seconds,
                  sum(v for k, v in used.items() if k.startswith("reader")), used["machine_busy_pct"])


def _latencies(sent: dict[int, float], results: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Per write: ms from sending it to the last stream that got its poke; and every single delivery."""
    last: dict[int, float] = {}
    each: list[float] = []
    for result in results:
        for arrivals in result["arrivals"]:
            for version, at in arrivals:
                if version in sent:
                    each.append((at - sent[version]) * 1e3)
                    last[version] = max(last.get(version, 0.0), at)
    return [(last[v] - sent[v]) * 1e3 for v in sorted(last)], each


async def sse_streams(settings: Settings, workdir: Path, streams: int, procs: int, writes: int,
                      interval_s: float = 0.5, idle_s: float = 5.0) -> list[Row]:
    """S streams over ``procs`` reader processes on one gateway process; ``writes`` puts ``interval_s``
    apart; rows: write -> every stream p50/p99, Kafka consumers, the gateway's CPU and memory."""
    gateway = GatewayProcess(settings, workdir / "gateway.log")
    workers: list[asyncio.subprocess.Process] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as http:
            await gateway.ready(http)
            rss_empty = resident_mib(gateway.proc.pid)
            workers = await _readers(gateway.port, streams, procs, settings_env(settings))
            opened = await gauge(http, "eventconfig_gateway_watch_streams")
            readers = [worker.pid for worker in workers]
            idle = await _window(gateway.proc.pid, readers, idle_s)
            rss_idle = resident_mib(gateway.proc.pid)
            sent: dict[int, float] = {}
            window = asyncio.create_task(_window(gateway.proc.pid, readers, writes * interval_s))
            async with ConfigClient(settings, timeout=30) as client:
                for i in range(writes):
                    began = time.time()
                    sent[await client.put("bench-sse", "sse", f"k{i}", str(i))] = began
                    await asyncio.sleep(max(0.0, began + interval_s - time.time()))
            busy = await window
            consumers = await gauge(http, "eventconfig_gateway_watch_consumers")
            rss_busy = resident_mib(gateway.proc.pid)
            results = await _results(workers, max(sent))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
        gateway.stop()
    every, each = _latencies(sent, results)
    complete = sum(r["complete"] for r in results)
    missing = writes - len(every)
    note = (f"{streams} streams over {procs} reader processes ({opened:.0f} open on the gateway), {writes} puts "
            f"{interval_s:g} s apart; from sending the put (write and projector included) to the stream "
            f"reading its poke; {complete}/{streams} streams saw the last write"
            + (f"; {missing} writes reached no stream" if missing else ""))
    valid = complete == streams and not missing
    return [
        Row("sse", f"write → every one of {streams} streams, p50", percentile(every, 50), "ms", note=note,
            valid=valid),
        Row("sse", f"write → every one of {streams} streams, p99", percentile(every, 99), "ms", Goal("<=", 500),
            valid=valid),
        Row("sse", "write → one stream (all deliveries), p50 / p99", percentile(each, 50), "ms",
            note=f"p99 {percentile(each, 99):.0f} ms over {len(each)} deliveries"),
        Row("sse", "Kafka consumers the gateway used", consumers, "", Goal("<=", 1),
            note="eventconfig_gateway_watch_consumers during the writes"),
        Row("sse", f"gateway CPU, {streams} streams idle", idle.gateway, "% core", note=f"idle: {idle.text()}"),
        Row("sse", f"gateway CPU, {streams} streams, during writes", busy.gateway, "% core",
            note=f"during writes: {busy.text()}"),
        Row("sse", f"gateway resident memory, {streams} streams idle / during writes", rss_idle, "MiB",
            note=f"during writes {rss_busy:.0f} MiB; {rss_empty:.0f} MiB with no stream: "
                 f"{(rss_idle - rss_empty) * 1024 / max(streams, 1):.1f} KiB per stream"),
    ]


if __name__ == "__main__":
    asyncio.run(_reader_main(StreamSpec(**json.loads(sys.argv[1]))))

"""``--profile DIR``: py-spy records the service and one client process during a scenario's window.

Where a goal is out of reach on this machine, the benchmark shows where the time goes: py-spy
samples the processes' Python stacks (``--nonblocking``: the target is never paused) from the start
to the end of the measurement window, into ``DIR/<scenario>-<process>.txt`` (collapsed stacks, for
flamegraph.pl, inferno or speedscope) and ``.speedscope.json``; :mod:`bench.stacks` sums them into
categories and :func:`profile_rows` prints them beside the CPU use /proc measured in the same window.

Example::

    profiler = Profiler.prepare(Path("/tmp/prof"))   # ProfilerUnavailable: py-spy missing or no ptrace
    profiles = await profiler.record("put64", {"service": pid, "client": worker_pid}, since, until)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eventconfig.errors import EventConfigError

from bench import cpu
from bench.report import Row
from bench.stacks import Summary, describe, parse_collapsed, speedscope, summarise

RATE_HZ = 100
PROFILED = ("put1", "put64", "get1", "get64", "fleet")  # the scenarios with client processes and a window
_STOP_TIMEOUT_S = 30.0  # py-spy writes its file after SIGINT; a stuck one is killed


class ProfilerUnavailable(EventConfigError):
    """py-spy is not installed, or it cannot attach to a process here (ptrace not permitted)."""


def find_py_spy() -> str:
    """The py-spy executable: beside this interpreter (where pip puts it), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if not found:
        raise ProfilerUnavailable("py-spy is not installed (pip install 'eventconfig[bench]')")
    return found


def check_attach(binary: str, timeout: float = 30.0) -> None:
    """Attach ``binary`` (py-spy) once to a throwaway Python process; raise when it cannot."""
    target = subprocess.Popen([sys.executable, "-c", "import sys, time; print(flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert target.stdout is not None
        target.stdout.readline()  # the interpreter is up
        try:
            done = subprocess.run([binary, "dump", "--pid", str(target.pid), "--nonblocking"], capture_output=True,
                                  timeout=timeout, text=True, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProfilerUnavailable(f"py-spy at {binary} did not run: {exc}") from None
        if done.returncode != 0:
            reason = next((ln for ln in done.stderr.splitlines() if ln.strip()), f"exit code {done.returncode}")
            raise ProfilerUnavailable(f"py-spy cannot attach to a process here ({reason.strip()}); it needs ptrace: "
                                      "root or CAP_SYS_PTRACE, or kernel.yama.ptrace_scope 0")
    finally:
        target.kill()
        target.wait()


@dataclass(frozen=True)
class ProcessProfile:
    """One process's recording: its files and summary, or why there is none (``error``)."""

    scenario: str
    role: str
    raw_file: Path
    summary: Summary | None = None
    error: str = ""
    on_core_pct: float = 0.0  # this process's CPU in the window (100 = one core)
    ready_pct: float = 0.0  # its threads ready to run but waiting for a core (the kernel's run queue)


@dataclass(frozen=True)
class Profiler:
    """Records py-spy profiles into ``folder`` (created by :meth:`prepare`)."""

    folder: Path
    binary: str
    rate_hz: int = RATE_HZ

    @classmethod
    def prepare(cls, folder: Path) -> Profiler:
        """Check py-spy is there and may attach, and create ``folder``; raises ProfilerUnavailable."""
        binary = find_py_spy()
        check_attach(binary)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProfilerUnavailable(f"cannot create {folder}: {exc.strerror}") from None
        return cls(folder, binary)

    async def record(self, scenario: str, pids: Mapping[str, int], since: float, until: float) -> list[ProcessProfile]:
        """Sample each process (role -> pid) from wall time ``since`` to ``until``; then summarise."""
        await asyncio.sleep(max(0.0, since - time.time()))
        spies: dict[str, asyncio.subprocess.Process] = {}
        try:
            for role, pid in pids.items():
                spies[role] = await self._start(scenario, role, pid)
            before = {role: _times(pid) for role, pid in pids.items()}
            await asyncio.sleep(max(0.0, until - time.time()))
            used = {role: _percent(before[role], _times(pid)) for role, pid in pids.items()}
            for spy in spies.values():  # all stop at the window's end; then py-spy writes its file
                if spy.returncode is None:
                    spy.send_signal(signal.SIGINT)
            return [await self._finish(scenario, role, spy, *used[role]) for role, spy in spies.items()]
        finally:
            for spy in spies.values():
                if spy.returncode is None:
                    spy.kill()
                    await spy.wait()

    def raw_file(self, scenario: str, role: str) -> Path:
        return self.folder / f"{scenario}-{role}.txt"

    async def _start(self, scenario: str, role: str, pid: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            self.binary, "record", "--pid", str(pid), "--rate", str(self.rate_hz), "--format", "raw",
            "--output", str(self.raw_file(scenario, role)), "--nonblocking", "--threads", "--idle",
            "--full-filenames",  # py-spy's short names drop the package of a folder without __init__.py
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def _finish(self, scenario: str, role: str, spy: asyncio.subprocess.Process, on_core_pct: float,
                      ready_pct: float) -> ProcessProfile:
        """Wait for the stopped ``spy`` to write its file, write the speedscope file, summarise."""
        raw = self.raw_file(scenario, role)
        try:
            _, err = await asyncio.wait_for(spy.communicate(), _STOP_TIMEOUT_S)
        except TimeoutError:
            return ProcessProfile(scenario, role, raw, error=f"py-spy did not stop within {_STOP_TIMEOUT_S:g} s")
        stacks = parse_collapsed(raw.read_text()) if raw.exists() else []
        if not stacks:
            lines = [ln.strip() for ln in err.decode(errors="replace").splitlines() if ln.strip()]
            reason = next((ln for ln in lines if ln.startswith("Error")), lines[-1] if lines else "no samples")
            return ProcessProfile(scenario, role, raw, error=f"py-spy recorded nothing: {reason}")
        name = f"{scenario} {role}"
        raw.with_suffix(".speedscope.json").write_text(json.dumps(speedscope(stacks, name)))
        return ProcessProfile(scenario, role, raw, summarise(stacks), on_core_pct=on_core_pct, ready_pct=ready_pct)


def _times(pid: int) -> tuple[float, float, float]:
    """Now, the CPU seconds of ``pid`` and its seconds in the run queue."""
    return time.monotonic(), cpu.process_cpu(pid), cpu.run_queue_wait(pid)


def _percent(before: tuple[float, float, float], after: tuple[float, float, float]) -> tuple[float, float]:
    """Percent of the window between two :func:`_times` on a core and waiting for one."""
    wall = max(after[0] - before[0], 1e-9)
    return 100 * (after[1] - before[1]) / wall, 100 * (after[2] - before[2]) / wall


@dataclass(frozen=True)
class WindowProfile:
    """What to record in one scenario's window: the known processes (the service); a client is added."""

    profiler: Profiler
    scenario: str
    pids: dict[str, int]

    def start(self, client_pid: int, since: float, until: float) -> asyncio.Task[list[ProcessProfile]]:
        return asyncio.create_task(self.profiler.record(self.scenario, {**self.pids, "client": client_pid}, since,
                                                        until))


def profile_rows(profiles: Sequence[ProcessProfile], cpu: Mapping[str, float], client_procs: int) -> list[Row]:
    """One row per profiled process (its measured CPU, the categories scaled to it) and the broker's CPU.

    The client profile is one of ``client_procs`` alike worker processes: its shares are applied to
    the CPU all of them used together."""
    rows = []
    for profile in profiles:
        used = cpu.get(f"{profile.role}s_pct" if profile.role == "client" else f"{profile.role}_pct")
        who = profile.role
        if profile.role == "client":
            who = f"clients (py-spy on 1 of {client_procs} processes)" if client_procs > 1 else "clients"
        files = f"{profile.raw_file.name}, {profile.raw_file.with_suffix('.speedscope.json').name}"
        if profile.summary is None:
            note, valid = profile.error, False
        else:
            note = (f"of which {describe(profile.summary, used)}; the profiled process: on a core "
                    f"{profile.on_core_pct:.0f}%, ready but waiting for a core {profile.ready_pct:.0f}%, event loop "
                    f"idle in select {100 * profile.summary.idle_fraction:.0f}% of the window; {files}")
            valid = True
        rows.append(Row(profile.scenario, f"where the time goes: {who}", used, "% CPU", note=note, valid=valid,
                        extra={"profile": profile.summary.by_category if profile.summary else {},
                               "window_samples": profile.summary.window if profile.summary else 0,
                               "file": str(profile.raw_file)}))
    if profiles and "broker_pct" in cpu:
        rows.append(Row(profiles[0].scenario, "where the time goes: broker", cpu["broker_pct"], "% CPU",
                        note="the Kafka broker's JVM: CPU only (py-spy samples Python processes)"))
    return rows


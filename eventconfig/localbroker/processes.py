"""Operating-system side of the local broker's nodes: ports, liveness and signals of JVM processes."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stopped(pid: int) -> bool:
    """True when the process is stopped by a signal (state T in /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] in ("T", "t")


def alive(pid: int) -> bool:
    """True while the process exists (a paused one too); reaps it when it is our exited child."""
    if pid <= 0:  # never started (0 would address our own process group)
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_ticks(pid: int) -> int:
    """When the process started (clock ticks after boot, /proc/<pid>/stat field 22); 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[19])


def is_process(pid: int, started: int, marker: str) -> bool:
    """True while ``pid`` is still the process that was started: alive and started at ``started``
    ticks (or, with ``started`` unknown (0), running a command line that contains ``marker``). A
    process id the system gave to another process since must never be signalled."""
    if not alive(pid):
        return False
    if started:
        return start_ticks(pid) == started
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def port_taken(port: int) -> str | None:
    """Why ``port`` cannot be listened on (another process holds it), or None when it is free."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does: TIME_WAIT is no owner
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None

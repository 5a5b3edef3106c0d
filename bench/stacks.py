"""Sampled stacks (py-spy's collapsed ``raw`` format) summed into categories a reader can act on.

A raw file has one line per distinct stack, ``FRAME;FRAME;...;FRAME COUNT``, root first, each frame
``function (path:line)``; recorded with ``--threads`` the first frame names the thread, ``thread (TID):
NAME``. A sample belongs to the category of its innermost frame whose file path says something: the
leaf ``json/encoder.py`` called from ``eventconfig/writer/batch.py`` is the writer's time, while
``asyncio/selector_events.py`` at the leaf is time in socket reads and writes. The event loop waiting
in ``selectors.py`` is idle; other threads blocked in ``threading``/``queue``/``concurrent.futures``
are merely waiting and count for nothing. The machinery (the loop, sockets, waiting) counts only
when its own code is the leaf: unknown code that the loop or a pool thread runs is ``other``.

Example::

    summary = summarise(parse_collapsed(raw_text))
    summary.shares()        # {"socket I/O": 0.41, "Kafka protocol encode/decode": 0.22, ...}
    summary.idle_fraction   # 0.74: the event loop waited in select 74 % of the window
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

IDLE = "idle (event loop in select)"
WAITING = "waiting threads"  # blocked pool/helper threads: not a cost, left out of the shares
SOCKET = "socket I/O"
KAFKA_CODEC = "Kafka protocol encode/decode"
KAFKA_CLIENT = "aiokafka client internals"
AVRO = "Avro"
VIEW = "RocksDB view"
SERVICE = "eventconfig service"
CLIENT = "eventconfig client"
LOGGING = "logging"
HARNESS = "benchmark harness"
EVENT_LOOP = "asyncio event loop"
OTHER = "other"

# (start of a path inside sys.path, category): the first that fits wins, so the more specific comes first.
RULES: tuple[tuple[str, str], ...] = (
    ("selectors.py", IDLE),
    ("threading.py", WAITING),
    ("queue.py", WAITING),
    ("concurrent/futures/", WAITING),
    ("asyncio/selector_events.py", SOCKET),
    ("asyncio/streams.py", SOCKET),
    ("asyncio/transports.py", SOCKET),
    ("asyncio/sslproto.py", SOCKET),
    ("socket.py", SOCKET),
    ("ssl.py", SOCKET),
    ("asyncio/", EVENT_LOOP),
    ("aiokafka/protocol/", KAFKA_CODEC),
    ("aiokafka/record/", KAFKA_CODEC),
    ("aiokafka/codec.py", KAFKA_CODEC),
    ("aiokafka/", KAFKA_CLIENT),
    ("fastavro/", AVRO),
    ("eventconfig/codec.py", AVRO),
    ("rocksdict/", VIEW),
    ("eventconfig/view/", VIEW),
    ("eventconfig/client/", CLIENT),
    ("eventconfig/", SERVICE),
    ("logging/", LOGGING),
    ("bench/", HARNESS),
)
_NOT_COSTS = (IDLE, WAITING)
_MACHINERY = (IDLE, WAITING, SOCKET, EVENT_LOOP)  # the frames every stack passes through


@dataclass(frozen=True)
class Stack:
    """One line of a collapsed-stacks file: ``frames`` root first, seen in ``count`` samples."""

    thread: str
    frames: tuple[str, ...]
    count: int


def parse_collapsed(text: str) -> list[Stack]:
    """The stacks of a py-spy ``raw`` file (lines that do not parse are skipped)."""
    stacks = []
    for line in text.splitlines():
        body, _, count = line.rstrip().rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = body.split(";")
        thread = ""
        if frames[0].startswith("thread ("):
            thread, frames = frames[0], frames[1:]
        stacks.append(Stack(thread, tuple(frames), int(count)))
    return stacks


def frame_path(frame: str) -> str:
    """The file of ``function (path:line)``."""
    inside = frame.rpartition(" (")[2].rstrip(")")
    return inside.rpartition(":")[0] or inside


def path_category(path: str) -> str | None:
    """The category of a file, or None: the rule fitting its innermost package wins, whatever folders
    hold the code (``/src/eventconfig/bench/load.py`` is the harness, not eventconfig)."""
    parts = path.split("/")
    for start in range(len(parts) - 1, -1, -1):
        inner = "/".join(parts[start:])
        for fragment, category in RULES:
            if inner.startswith(fragment):
                return category
    return None


def categorise(frames: Sequence[str]) -> str:
    """The category of a stack (root first): that of its innermost frame a rule knows, else ``other``;
    machinery (loop, socket, waiting) only when its frame is the leaf."""
    for depth, frame in enumerate(reversed(frames)):
        category = path_category(frame_path(frame))
        if category is not None:
            return OTHER if depth and category in _MACHINERY else category
    return OTHER


@dataclass(frozen=True)
class Summary:
    """Samples per category; ``window`` is the sampling instants (the most samples any thread has)."""

    by_category: dict[str, int]
    window: int

    @property
    def busy(self) -> int:
        return sum(n for category, n in self.by_category.items() if category not in _NOT_COSTS)

    @property
    def idle_fraction(self) -> float:
        """The share of the window the event loop spent waiting in select."""
        return self.by_category.get(IDLE, 0) / self.window if self.window else 0.0

    def shares(self) -> dict[str, float]:
        """Each cost category's fraction of the busy samples, largest first."""
        busy = self.busy
        costs = [(c, n) for c, n in self.by_category.items() if c not in _NOT_COSTS and n]
        return {c: n / busy for c, n in sorted(costs, key=lambda cn: (-cn[1], cn[0]))} if busy else {}


def summarise(stacks: Iterable[Stack]) -> Summary:
    by_category: Counter[str] = Counter()
    per_thread: Counter[str] = Counter()
    for stack in stacks:
        by_category[categorise(stack.frames)] += stack.count
        per_thread[stack.thread] += stack.count
    return Summary(dict(by_category), max(per_thread.values(), default=0))


def describe(summary: Summary, cpu_pct: float | None, floor_share: float = 0.03) -> str:
    """``socket I/O 35%, Kafka protocol encode/decode 30%, ..., Avro 4.2%, other 2.0%``.

    With ``cpu_pct`` (the process's measured CPU, 100 = one core) each category's share of the busy
    samples is scaled to it, so the parts add up to the measured figure; without, the shares are
    percent of the busy samples. Categories under ``floor_share`` of the busy samples join ``other``."""
    if not summary.busy:
        return "no busy samples"
    scale = cpu_pct if cpu_pct is not None else 100.0
    shown: dict[str, float] = {}
    for category, share in summary.shares().items():
        key = category if share >= floor_share else OTHER
        shown[key] = shown.get(key, 0.0) + share
    order = [c for c in shown if c != OTHER] + ([OTHER] if OTHER in shown else [])
    return ", ".join(f"{c} {_percent(scale * shown[c])}" for c in order)


def _percent(value: float) -> str:
    return f"{value:.0f}%" if value >= 10 else f"{value:.1f}%"


def speedscope(stacks: Sequence[Stack], name: str) -> dict[str, Any]:
    """The stacks as a speedscope file (https://www.speedscope.app), one sampled profile per thread."""
    frames: dict[str, int] = {}
    threads: dict[str, list[Stack]] = {}
    for stack in stacks:
        threads.setdefault(stack.thread or "all threads", []).append(stack)
        for frame in stack.frames:
            frames.setdefault(frame, len(frames))
    profiles = []
    for thread, own in threads.items():
        total = sum(s.count for s in own)
        profiles.append({"type": "sampled", "name": thread, "unit": "none", "startValue": 0, "endValue": total,
                         "samples": [[frames[f] for f in s.frames] for s in own],
                         "weights": [s.count for s in own]})
    return {"$schema": "https://www.speedscope.app/file-format-schema.json", "name": name,
            "exporter": "eventconfig bench", "activeProfileIndex": 0,
            "shared": {"frames": [{"name": f} for f in frames]}, "profiles": profiles}

"""The watch hub's memory: a ring of the newest pokes and one bounded inbox per event stream. Pure.

The ring holds the last ``capacity`` pokes the hub read, each with its notify-topic offset, in order,
so a stream resuming from a recent ``Last-Event-ID`` is served from it instead of from the topic.
It is complete above :attr:`PokeRing.floor`: every poke newer than that version is in it (pokes are
on the topic in version order). An inbox holds one stream's pokes not yet written to its client;
when the client reads too slowly and ``limit`` pokes wait, the inbox drops them and keeps a
:class:`Lagged` marker instead, so a slow stream costs bounded memory and never blocks the others.

Example::

    ring = PokeRing(10_000); ring.add(17, poke)
    inbox = Inbox(1_000); inbox.put(poke); items = await inbox.take(15.0)
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

Poke = dict[str, Any]


@dataclass(frozen=True)
class Lagged:
    """Pokes up to ``version`` were dropped from a stream's inbox: the client must reload at it."""

    version: int
    reason: str


@dataclass(frozen=True)
class Interrupted:
    """The hub lost its notify consumer; it reconnects in ``retry_ms`` and resumes where it was."""

    reason: str
    retry_ms: int


@dataclass(frozen=True)
class Closed:
    """The gateway is stopping: the stream ends."""


Item = Poke | Lagged | Interrupted | Closed


class PokeRing:
    """The newest ``capacity`` pokes, oldest first, with their offsets on the notify topic."""

    def __init__(self, capacity: int) -> None:
        self._entries: deque[tuple[int, Poke]] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, offset: int, poke: Poke) -> None:
        self._entries.append((offset, poke))

    def clear(self) -> None:
        self._entries.clear()

    @property
    def floor(self) -> int | None:
        """Every poke newer than this version is in the ring (None: the ring is empty)."""
        return self._entries[0][1]["version"] - 1 if self._entries else None

    @property
    def newest(self) -> int | None:
        return self._entries[-1][1]["version"] if self._entries else None

    def covers(self, last_seen: int) -> bool:
        floor = self.floor
        return floor is not None and last_seen >= floor

    def after(self, last_seen: int) -> list[Poke]:
        """The pokes newer than ``last_seen``, oldest first."""
        return [poke for _, poke in self._entries if poke["version"] > last_seen]

    def first_held_after(self, beginning: int) -> tuple[bool, int | None]:
        """Whether retention deleted any poke of the ring (its offset is below ``beginning``), and
        the version of the first one still held (None: all of them were deleted)."""
        if not self._entries or self._entries[0][0] >= beginning:
            return False, None
        held = next((poke["version"] for offset, poke in self._entries if offset >= beginning), None)
        return True, held


class Inbox:
    """One stream's pokes waiting to be written; at ``limit`` they are dropped for a :class:`Lagged`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: list[Item] = []
        self._pokes = 0
        self._ready = asyncio.Event()
        self._opened_at: int | None = None  # the version the stream opened at; None: still opening

    def opened(self, version: int) -> None:
        """The stream opened at ``version``: it has (or replays) every poke up to it."""
        self._opened_at = version

    def lacks(self, version: int) -> bool:
        """Whether the stream opened and lacks the poke of ``version`` (False while it opens)."""
        return self._opened_at is not None and version > self._opened_at

    def put(self, item: Item) -> bool:
        """Queue ``item``; False when a poke overflowed the inbox (the stream is now lagging)."""
        poke = isinstance(item, dict)
        if poke and self._pokes >= self.limit:
            assert isinstance(item, dict)
            self._items = [i for i in self._items if not isinstance(i, dict | Lagged)]
            self._items.append(Lagged(item["version"], f"the stream fell more than {self.limit} pokes behind"))
            self._pokes = 0
            self._ready.set()
            return False
        self._pokes += poke
        self._items.append(item)
        self._ready.set()
        return True

    async def take(self, timeout: float) -> list[Item]:
        """Everything queued, waiting up to ``timeout`` seconds for something (then: nothing)."""
        if not self._items:
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return []
        items, self._items, self._pokes = self._items, [], 0
        self._ready.clear()
        return items

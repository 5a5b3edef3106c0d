"""An exact in-process cache of hot items of the view, in front of RocksDB.

A bounded map of ``(workspace, type, key) -> Entry | None`` (None: the item is absent, cached too).
When full, the older half of the items goes (first in, first out, half at a time): a hit does no
bookkeeping at all (about twice as fast as an LRU's reordering), and a hot item that leaves is read
back from RocksDB once. An item enters on its second read miss among the last ``capacity`` misses (a
doorkeeper remembers the hashes of items missed once): a pass over many cold items then neither
pushes the hot ones out nor keeps an object per read alive, whose churn through the garbage
collector's oldest generation cost more than the RocksDB read saved. It is kept exact by the store's
writes, seqlock style: a write first evicts the keys it touches and marks the
cache as being written, then writes RocksDB, then puts the new entries of the keys that were cached
back. A miss remembers the write generation before it
reads RocksDB and keeps its result only if no write began or ran meanwhile, so a value read before a
write can never be cached after it. Reads take no lock (each dict operation is atomic under the
GIL), writes take a short one; readers on other threads are exact too.

Example::

    cache = ViewCache(100_000)
    generation = cache.generation
    cache.fill(key, entry_from_rocksdb, generation)   # kept if seen before and no write ran meanwhile
    cache.items.get(key, MISS)                        # the entry, None (absent) or MISS
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from typing import Final, TypeVar

from eventconfig.model import Entry


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()  # what ``items.get(key, MISS)`` gives for an unknown item (None: known to be absent)

CacheKey = tuple[str, str, str]
_Key = TypeVar("_Key", bound=CacheKey)  # e.g. model.ItemKey (a Mapping's keys are invariant)


class ViewCache:
    """A bounded, exact cache of view items; ``capacity`` 0 caches nothing.

    ``items`` is read directly on the hot path; only this class changes it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.generation = 0  # odd while a write is in progress; fills wait for an even, unchanged one
        self.items: dict[CacheKey, Entry | None] = {}  # in insertion order: the oldest first
        self._missed_once: set[int] = set()  # hashes of items read from RocksDB once, not cached
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.items)

    def fill(self, key: CacheKey, entry: Entry | None, generation: int) -> None:
        """Remember what a read of RocksDB found, if the item was missed before and no write began
        since ``generation`` was taken.

        No lock (a miss is the cold path): a write that begins between the check and the insert
        changes the generation, and the second check takes the entry out again. Two items of equal
        hash share a doorkeeper slot, which only lets one in a miss early."""
        if not self.capacity or generation != self.generation or generation % 2:
            return
        missed_once, hashed = self._missed_once, hash(key)
        if hashed not in missed_once:
            if len(missed_once) >= self.capacity:
                missed_once.clear()
            missed_once.add(hashed)
            return
        missed_once.discard(hashed)
        items = self.items
        items[key] = entry
        if generation != self.generation:
            items.pop(key, None)
        elif len(items) > self.capacity:
            # Half at a time: the deleted slots at the front of a dict are skipped once per half,
            # not once per eviction. list(islice) runs in C, so no other thread changes it meanwhile.
            for old in list(islice(items, len(items) // 2 or 1)):
                items.pop(old, None)

    @contextmanager
    def writing(self, ops: Mapping[_Key, Entry | None]) -> Iterator[None]:
        """Around one store write of ``ops``: evict them first, put back the cached ones after it
        succeeded (a failed write leaves them evicted, which is exact too)."""
        with self._lock:
            self.generation += 1
            items = self.items
            cached = [key for key in ops if key in items]
            for key in cached:
                items.pop(key, None)  # a fill on another thread may have taken it out already
        try:
            yield
            with self._lock:
                for key in cached:
                    items[key] = ops[key]
        finally:
            with self._lock:
                self.generation += 1

    def clear(self) -> None:
        with self._lock:
            self.generation += 2
            self.items.clear()
            self._missed_once.clear()

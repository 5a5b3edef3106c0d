"""Which requests are parked ``min_version`` reads, kept with the writer's committed request offset.

A parked read has been consumed (the writer's committed offset is past it) but not yet answered; it
lives only in the active writer's memory. So that a fail-over cannot lose it, every transaction
commits, as the metadata of the request offset, the offsets of the reads still parked after it. The
next writer re-reads those records and parks them again (docs/design.md §6). Committed together, the
list and the answers cannot disagree: a read is either listed or answered.

The list must fit the broker's ``offset.metadata.max.bytes`` (4096 by default). When it would not,
only the oldest parked offset is kept, and the next writer re-parks every ``min_version`` read from
there on; reads that were already answered are then answered a second time (clients ignore a
response to a request they no longer wait for).

Example::

    metadata = parked_metadata(w.offset for w in waiting)      # committed with the next offset
    span = parked_span(metadata)                                # read back by the next writer
    span.first, span.holds(offset)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_EXACT = "parked:"
_FROM = "parked-from:"
MAX_METADATA_CHARS = 1024  # well under the broker's default 4096-byte limit


@dataclass(frozen=True)
class ParkedSpan:
    """Where a predecessor's parked reads are: exactly ``offsets``, or any min_version read from ``first``."""

    first: int
    offsets: frozenset[int] | None = None

    def holds(self, offset: int) -> bool:
        return offset >= self.first and (self.offsets is None or offset in self.offsets)


def parked_metadata(offsets: Iterable[int]) -> str:
    """The commit metadata naming the parked reads at ``offsets`` ("" when none are parked)."""
    ordered = sorted(set(offsets))
    if not ordered:
        return ""
    exact = _EXACT + ",".join(map(str, ordered))
    return exact if len(exact) <= MAX_METADATA_CHARS else f"{_FROM}{ordered[0]}"


def parked_span(metadata: str | None) -> ParkedSpan | None:
    """Read back :func:`parked_metadata`; None when nothing is parked or the metadata is not ours."""
    try:
        if metadata and metadata.startswith(_EXACT):
            offsets = frozenset(int(part) for part in metadata[len(_EXACT):].split(","))
            return ParkedSpan(min(offsets), offsets)
        if metadata and metadata.startswith(_FROM):
            return ParkedSpan(int(metadata[len(_FROM):]))
    except ValueError:
        pass
    if metadata:
        log.warning("ignoring unreadable commit metadata %r: no parked reads recovered", metadata[:80])
    return None

"""The pokes of the writer's own writes, for the writer's own transaction (docs/design.md §7).

The writer knows each write's changes, so it projects them itself (with the pure
:class:`~eventconfig.push.projector.Projector`) and writes the pokes to the notify topic in the
transaction that holds the writes: one transaction per write instead of two, the pokes committed or
aborted with their writes, in version order. Each commit marker of such a transaction carries the
``poked`` header, which tells the projector that the version's poke is already made.

Example::

    pokes = WriterPokes(items_cap=65536)
    pokes.previous_version = 5                         # the notify topic's last poke, at take-over
    log, notify = pokes(result.log, result.writes)   # flagged markers, one poke record per qualifying write
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from eventconfig.codec import Codec, default_codec
from eventconfig.errors import CodecError
from eventconfig.logrecords import Headers, LogRecord, OutRecord, decode_record
from eventconfig.model import MARKER_KEY, POKED_HEADER, VERSION_HEADER, Entry, ItemKey
from eventconfig.push.projector import DEFAULT_ITEMS_CAP, Poke, Projector

log = logging.getLogger(__name__)

_NONE = 2**63  # no item read since the last commit marker

Write = tuple[int, Mapping[ItemKey, Entry | None]]  # a write's version and its changes (None: deleted)


def poke_generation(codec: Codec, items_cap: int) -> bytes | None:
    """The schema generation pokes are written in: without items, the one subscribers before items read."""
    return codec.registry.generation("v0", "ConfigPush") if items_cap == 0 else None


def poke_record(poke: Poke, codec: Codec, generation: bytes | None = None) -> OutRecord:
    """A poke as a record of the notify topic: ``ConfigPush`` with the ``version`` header."""
    return OutRecord(None, codec.encode("ConfigPush", poke, writer=generation),
                     [(VERSION_HEADER, str(poke["version"]).encode())])


def write_pokes(writes: Sequence[Write], projector: Projector) -> list[Poke]:
    """The pokes of consecutive writes, one per qualifying write, in version order (``projector`` carries
    the version of the poke before them, and then of the last of them)."""
    pokes = []
    for version, changes in writes:
        for item, entry in changes.items():
            projector.add(LogRecord(item, entry.value if entry is not None else None, version))
        if (poke := projector.add(LogRecord(MARKER_KEY, "", version))) is not None:
            pokes.append(poke)
    return pokes


class Consumed(Protocol):
    """A consumed log record, as far as the projection reads it."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


class LogProjection:
    """The projection of the log read in order, telling the pokes the writer made from the others.

    A commit marker flagged ``poked`` says that its writer wrote the version's poke, unless items of
    older versions that no poke covers yet precede it since the last marker (compaction removed their
    own markers): then its poke covers those too, and it is not the writer's.
    """

    def __init__(self, codec: Codec | None = None, items_cap: int = DEFAULT_ITEMS_CAP,
                 previous_version: int | None = 0) -> None:
        self.codec = codec or default_codec()
        self.projector = Projector(items_cap, previous_version)
        self.oldest = _NONE  # the lowest version among the items read since the last commit marker

    def add(self, record: Consumed) -> tuple[LogRecord | None, Poke | None, bool]:
        """The decoded record (None: skipped, undecodable), the poke its commit marker releases, and
        whether the writer made that poke already."""
        try:
            decoded = decode_record(record.key, record.value, record.headers, self.codec)
        except CodecError as exc:
            log.warning("skipping an undecodable log record", extra={"fields": {"offset": record.offset,
                                                                                "error": str(exc)}})
            return None, None, False
        before = self.projector.previous_version  # the last poke made before this record
        poke = self.projector.add(decoded)
        if not decoded.is_marker:
            self.oldest = min(self.oldest, decoded.version)
            return decoded, None, False
        # Older items are the writer's to cover only if no poke covers them yet; pokes come in version
        # order, so those at or below the last poke were covered (a projector far behind a compaction).
        covered = self.oldest >= decoded.version or (before is not None and self.oldest <= before)
        poked = any(name == POKED_HEADER for name, _ in record.headers) and covered
        self.oldest = _NONE
        return decoded, poke, poked


class WriterPokes:
    """Turns a transaction's log records and writes into flagged log records and their poke records.

    ``previous_version`` is the version of the last poke (0: none ever; None: unknown): the writer sets
    it at take-over from the notify topic, and each call moves it on, so the pokes chain (§7)."""

    def __init__(self, codec: Codec | None = None, items_cap: int = DEFAULT_ITEMS_CAP) -> None:
        self.codec = codec or default_codec()
        self.items_cap = items_cap
        self.generation = poke_generation(self.codec, items_cap)
        self.previous_version: int | None = None
        self._marker_key = self.codec.encode_log_key(*MARKER_KEY)

    def __call__(self, log: Sequence[OutRecord], writes: Sequence[Write]) -> tuple[list[OutRecord], list[OutRecord]]:
        flagged = [OutRecord(r.key, r.value, [*r.headers, (POKED_HEADER, b"1")]) if r.key == self._marker_key else r
                   for r in log]
        projector = Projector(self.items_cap, self.previous_version)
        pokes = write_pokes(writes, projector)
        self.previous_version = projector.previous_version
        return flagged, [poke_record(poke, self.codec, self.generation) for poke in pokes]

    def unpoked(self, records: Iterable[Consumed]) -> bool:
        """Whether log records (read from the projector's committed offset to the end) hold a version
        whose poke the writer did not make: the projector has not caught up with an older writer."""
        return any(map(self.unpoked_check(), records))

    def unpoked_check(self) -> Callable[[Consumed], bool]:
        """:meth:`unpoked` one record at a time, in log order: a reader can stop at the first True
        instead of holding the log from the projector's offset to the end."""
        projection = LogProjection(self.codec, self.items_cap)

        def check(record: Consumed) -> bool:
            _, poke, poked = projection.add(record)
            return poke is not None and not poked
        return check

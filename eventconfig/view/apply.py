"""From consumed log records to atomic view writes (pure: no I/O, no asyncio).

A write at version V is its item records followed by one commit marker (see
:mod:`eventconfig.logrecords`). The applier holds items back until their marker arrives, so a
reader never sees part of a write. Items after the last marker are an incomplete write and stay
buffered; :meth:`Applier.take_all` flushes them anyway during the initial replay, where a compacted
log may hold a single marker at its end and nobody reads the view before it has caught up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from eventconfig.codec import Codec, default_codec
from eventconfig.errors import CodecError
from eventconfig.logrecords import decode_record
from eventconfig.model import MAX_VERSION, Entry, ItemKey, Offset, Version, name_problem

log = logging.getLogger(__name__)

Ops = dict[ItemKey, Entry | None]


@dataclass(frozen=True, slots=True)
class ViewWrites:
    """One atomic change of the view: item ops (None = delete) plus the position it brings the view to.

    ``offset`` is the next log offset to read after these ops; ``version`` the last complete version.
    """

    ops: Ops
    offset: Offset
    version: Version


class Applier:
    """Buffers decoded log records and releases them one complete version at a time.

    Example::

        applier = Applier(version=store.meta().version)
        for r in records: applier.add(r.offset, r.key, r.value, r.headers)
        if (writes := applier.take(next_offset)) is not None: store.write(writes)
    """

    def __init__(self, version: Version, codec: Codec | None = None) -> None:
        # Highest version of the markers added (released or not yet taken): a stray lower marker never
        # moves it backwards, so the writer never reuses a version, and a fresh replay agrees.
        self.version = version
        self.skipped = 0  # undecodable records, skipped with a warning
        self.buffered = 0  # records added and not yet taken (complete writes and the incomplete tail)
        self._codec = codec or default_codec()
        self._released: Ops = {}  # ops up to the last marker
        self._tail: Ops = {}  # ops after the last marker
        self._tail_records = 0
        self._marker_offset: Offset | None = None

    def add(self, offset: Offset, key: bytes | None, value: bytes | None,
            headers: Sequence[tuple[str, bytes]]) -> None:
        """Decode and buffer one consumed record; a record that is not ours is counted and skipped."""
        try:
            record = decode_record(key, value, headers, self._codec)
            problem = self._problem(record.item, record.version, record.is_marker)
        except CodecError as exc:
            problem = str(exc)
        if problem is not None:
            self.skipped += 1
            log.warning("skipped an undecodable log record",
                        extra={"fields": {"offset": offset, "reason": problem}})
            return
        self.buffered += 1
        if record.is_marker:
            if self._tail:
                self._released.update(self._tail)
                self._tail = {}
            self._tail_records = 0
            self._marker_offset = offset
            self.version = max(self.version, Version(record.version))
            return
        self._tail_records += 1
        self._tail[record.item] = None if record.value is None else Entry(record.value, record.version)

    @staticmethod
    def _problem(item: ItemKey, version: int, is_marker: bool) -> str | None:
        # A negative version has no 8-byte unsigned form; one above MAX_VERSION would let a stray record
        # bring the writer's versions near Avro's 64-bit limit (§6); a NUL or empty name would break the key layout.
        if version < 0:
            return f"negative version {version}"
        if version > MAX_VERSION:
            return f"version {version} above the bound {MAX_VERSION}"
        workspace, type_, key = item
        if is_marker or (workspace and type_ and key and "\x00" not in workspace + type_ + key):
            return None  # the hot path: one check per record
        for kind, name in zip(("workspace", "type", "key"), item):
            problem = name_problem(kind, name)
            if problem is not None:
                return problem
        return None

    def take(self, next_offset: Offset) -> ViewWrites | None:
        """Everything up to the last marker added, or None when no marker came since the last take.

        ``next_offset`` is the log position after the last record added (the consumer's position). When
        nothing follows the marker the view may advance to it, past any transaction markers; otherwise
        it advances to just after the marker, so the incomplete write's items are read again after a restart.
        """
        if self._marker_offset is None:
            return None
        offset = next_offset if not self._tail_records else Offset(self._marker_offset + 1)
        writes = ViewWrites(self._released, offset, self.version)
        self._released = {}
        self._marker_offset = None
        self.buffered = self._tail_records
        return writes

    def take_all(self, next_offset: Offset) -> ViewWrites | None:
        """Everything buffered, complete or not (initial replay only); None when nothing is buffered."""
        if not self.buffered:
            return None
        ops = self._released
        ops.update(self._tail)
        writes = ViewWrites(ops, next_offset, self.version)
        self._released, self._tail = {}, {}
        self._marker_offset = None
        self._tail_records = self.buffered = 0
        return writes

"""Where a writer that takes over resumes the request topic, and which reads it must answer again.

A transaction with writes carries its next request offset, and the reads not answered yet (in the
form of :mod:`eventconfig.writer.parking`), as headers of its last commit marker, instead of a
consumer-offset commit to the writer group: two round trips fewer per transaction (AddOffsetsToTxn,
TxnOffsetCommit) and one partition fewer in it. Committed with the writes, offset and writes cannot
disagree. Transactions without a write (errors, dead letters) and stretches of reads still commit
to the group. Both only ever move forward, so the next writer resumes from the further of the two
(docs/design.md §6). The log is compacted, but the latest commit marker is always kept.

Example::

    log = stamped(result.log, ResumePoint(next_offset, parked_metadata(unanswered)))
    stamp = await last_stamped(settings)
    point = furthest(stamp.point if stamp else None, group_point)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from eventconfig.kafka.adapter import ConsumerRecord, TopicPartition

from eventconfig.kafka.reading import tail_records
from eventconfig.logrecords import OutRecord
from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.model import CHAIN_HEAD_HEADER, MARKER_KEY, PARKED_HEADER, REQUEST_OFFSET_HEADER
from eventconfig.settings import Settings
from eventconfig.writer.history_tail import Marker

_CODEC = default_codec()
_MARKER_KEY = _CODEC.encode_log_key(*MARKER_KEY)


@dataclass(frozen=True)
class ResumePoint:
    """The next request offset to handle, and the metadata naming the reads below it not answered."""

    offset: int
    parked: str = ""


def stamped(log: Sequence[OutRecord], point: ResumePoint) -> list[OutRecord]:
    """``log`` (a transaction's log records, ending with a commit marker) with ``point`` on its marker."""
    *items, marker = log
    headers = [(REQUEST_OFFSET_HEADER, str(point.offset).encode())]
    if point.parked:
        headers.append((PARKED_HEADER, point.parked.encode()))
    return [*items, OutRecord(marker.key, marker.value, [*marker.headers, *headers])]


def read_point(record: ConsumerRecord) -> ResumePoint | None:
    """The resume point a commit marker carries; None for an item or a marker without one."""
    if record.key != _MARKER_KEY:
        return None
    headers = dict(record.headers or [])
    try:
        offset = int(headers[REQUEST_OFFSET_HEADER].decode())
    except (KeyError, UnicodeDecodeError, ValueError):
        return None
    return ResumePoint(offset, headers.get(PARKED_HEADER, b"").decode("utf-8", errors="replace"))


class Stamped(NamedTuple):
    """The last commit marker a writer stamped: where to resume, and the version and chain head it
    holds, which the history must end at (writer/history_tail.py)."""

    point: ResumePoint
    marker: Marker


def read_stamped(record: ConsumerRecord) -> Stamped | None:
    """The resume point, version and chain head of a stamped commit marker; None for anything else."""
    point = read_point(record)
    if point is None or record.value is None:
        return None
    try:
        version = int(_CODEC.decode("LogEntry", record.value)["version"])
    except CodecError:
        return None
    head = dict(record.headers or []).get(CHAIN_HEAD_HEADER, b"").decode("utf-8", errors="replace")
    return Stamped(point, Marker(version, head))


async def last_stamped(settings: Settings) -> Stamped | None:
    """The last commit marker that carries a resume point, read from the log's tail (markers without
    one, like stray or older ones, are passed over); None when no marker carries one. Until the first
    write of a writer that stamps markers, that reads the whole log."""
    records = await tail_records(settings, TopicPartition(settings.topics.log, 0),
                                 lambda r: read_stamped(r) is not None)
    stamps = [stamp for record in records if (stamp := read_stamped(record)) is not None]
    return stamps[-1] if stamps else None


def furthest(*points: ResumePoint | None) -> ResumePoint | None:
    """The point furthest into the request topic (the latest committed), None when there is none."""
    known = [point for point in points if point is not None]
    return max(known, key=lambda point: point.offset) if known else None

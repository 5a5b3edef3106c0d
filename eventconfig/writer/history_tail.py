"""The end of the history topic, checked against the log's last commit marker before a writer continues
the versions and the hash chain (docs/design.md §6, §14.3).

The writer writes each version's ``Mutation`` (history) and commit marker (log) in one transaction,
and a new writer fences the previous one before it looks, so an honest history ends exactly where the
log's last stamped marker does: the same version, and the hash the marker carries as ``chain-head``.
Anything else means someone else wrote the history (a record appended, or the log or history restored
from different copies): continuing would chain the foreign record in or reuse its version, so the
writer refuses (:class:`HistoryMismatch`) until an operator has fixed it. The one tolerated difference
is a history that holds nothing (retention removed it, or it was never written): the chain then
continues from the marker's head. The check is pure; :func:`history_end` reads the topic's tail.

Example::

    version, head = continuation(await history_end(settings), marker, view_version)   # or HistoryMismatch
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.adapter import ConsumerRecord, TopicPartition
from eventconfig.kafka.reading import tail_records
from eventconfig.kafka.role_state import RoleRefused
from eventconfig.model import MAX_VERSION
from eventconfig.settings import Settings


class HistoryEnd(NamedTuple):
    """The history topic's last record: its offset, the version it claims (None: not a readable
    ``Mutation``) and its hash."""

    offset: int
    version: int | None
    hash: str


class Marker(NamedTuple):
    """The log's last commit marker written by a writer: its version and ``chain-head``."""

    version: int
    chain_head: str


class HistoryMismatch(RoleRefused):
    """The history does not end where the log's last commit marker says: the writer refuses to write."""


async def history_end(settings: Settings) -> HistoryEnd | None:
    """The last committed record of the history topic; None when it holds none."""
    records = await tail_records(settings, TopicPartition(settings.topics.history, 0), lambda r: True)
    return end_of(records)


def end_of(records: Sequence[ConsumerRecord]) -> HistoryEnd | None:
    """The :class:`HistoryEnd` of the last of ``records``; None when there are none."""
    if not records:
        return None
    last = records[-1]
    try:
        if last.value is None:
            raise CodecError("no value")
        mutation = default_codec().decode("Mutation", last.value)
    except CodecError:
        return HistoryEnd(last.offset, None, "")
    return HistoryEnd(last.offset, int(mutation["version"]), str(mutation["hash"]))


def continuation(end: HistoryEnd | None, marker: Marker | None, view_version: int) -> tuple[int, str]:
    """The version and chain head a newly active writer continues from; HistoryMismatch when the history
    does not end at ``marker`` (the log's last stamped commit marker; None when no marker is stamped:
    then at ``view_version``, with any head)."""
    expected = marker if marker is not None else Marker(view_version, "")
    if expected.version > MAX_VERSION:
        raise HistoryMismatch(f"the log's last commit marker claims version {expected.version}, above the "
                              f"bound {MAX_VERSION}")
    if end is None:  # nothing held: the chain continues from the marker's head
        return max(view_version, expected.version), expected.chain_head
    where = f"the history's last record (offset {end.offset})"
    if end.version is None:
        raise HistoryMismatch(f"{where} is not a readable Mutation")
    if end.version != expected.version:
        raise HistoryMismatch(f"{where} is version {end.version}, the log's last commit marker version "
                              f"{expected.version}")
    if expected.chain_head and end.hash != expected.chain_head:
        raise HistoryMismatch(f"{where}, version {end.version}, does not carry the chain head of the log's "
                              "last commit marker")
    return max(view_version, expected.version), end.hash or expected.chain_head

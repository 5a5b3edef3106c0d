"""The end of the history topic: the highest version, which a newly active writer must stay above, and
the chain head it must continue the hash chain from (docs/design.md §14.3).

The view's version comes from the log's commit markers. The history topic (one partition, one
``Mutation`` per version, key = the version in decimal) is written in the same transactions, so
normally it ends at the same version; if it ends higher (a stray or hand-written record, a log
restored from an older copy), reusing those versions would make the history ambiguous. Only the
tail is read: a window before the end, widened until it holds a record. The chain head is the hash
of the last record that reads as a Mutation, so the next write links to what the topic ends with.

Example::

    tail = await history_tail(settings)
    version = max(view_version, tail.version)
"""

from __future__ import annotations

from typing import NamedTuple

from eventconfig.kafka.adapter import ConsumerRecord, TopicPartition

from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.reading import tail_records
from eventconfig.settings import Settings


class HistoryTail(NamedTuple):
    version: int  # the highest version claimed by the last records; 0 when there are none
    chain_head: str  # the hash of the last readable Mutation; "" when there is none or it predates the chain


async def history_tail(settings: Settings) -> HistoryTail:
    """The highest version and the chain head among the last records of the history topic."""
    tp = TopicPartition(settings.topics.history, 0)
    records = await tail_records(settings, tp, lambda r: record_version(r) is not None)
    versions = [v for r in records if (v := record_version(r)) is not None]
    return HistoryTail(max(versions, default=0), _last_hash(records))


def record_version(record: ConsumerRecord) -> int | None:
    """The version a history record claims (key or Mutation, the higher), or None if neither reads."""
    claims = []
    try:
        claims.append(int((record.key or b"").decode()))
    except (UnicodeDecodeError, ValueError):
        pass
    try:
        claims.append(int(default_codec().decode("Mutation", record.value)["version"]))
    except (CodecError, TypeError, KeyError, ValueError):
        pass
    return max(claims, default=None)


def _last_hash(records: list[ConsumerRecord]) -> str:
    for record in reversed(records):
        try:
            return str(default_codec().decode("Mutation", record.value)["hash"])
        except (CodecError, TypeError, KeyError):
            continue
    return ""

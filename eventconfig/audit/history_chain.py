"""``eventconfig verify --history``: walk the history topic's hash chain up to the log's commit marker.

The log's last commit marker carries the chain head of its version (docs/design.md §14.3); the
history must chain, record by record, to that same hash. See :mod:`eventconfig.audit.chain` for what
this catches and what it cannot.

Example::

    report = await verify_history(settings)
    report.ok, report.head     # keep the head: a later walk must pass through it
"""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from eventconfig.audit.chain import ChainCheck, ChainReport
from eventconfig.audit.history import HistoryReader, Progress
from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.reading import tail_records
from eventconfig.model import CHAIN_HEAD_HEADER, MARKER_KEY
from eventconfig.settings import Settings


async def verify_history(settings: Settings, progress: Progress | None = None,
                         anchor: tuple[int, str] | None = None) -> ChainReport:
    """Check the whole held history against its chain, the log's last commit marker and ``anchor``
    (version, hash: a head kept from an earlier walk)."""
    marker = await last_marker(settings)
    check = ChainCheck(marker, anchor=anchor)
    async with HistoryReader(settings) as history:
        async for record in history.records(progress):
            check.feed(record.offset, record.value)
    return check.finish()


async def last_marker(settings: Settings) -> tuple[int, str] | None:
    """(version, chain head) of the log's last commit marker; None when the log has none."""
    codec = default_codec()
    marker_key = codec.encode_log_key(*MARKER_KEY)

    def is_marker(record: ConsumerRecord) -> bool:
        return record.key == marker_key and record.value is not None

    markers = [r for r in await tail_records(settings, TopicPartition(settings.topics.log, 0), is_marker)
               if is_marker(r)]
    if not markers:
        return None
    last = markers[-1]
    try:
        version = int(codec.decode("LogEntry", last.value)["version"])
    except CodecError:
        return None  # not a marker the writer wrote; the history check alone decides
    head = next((raw.decode(errors="replace") for name, raw in last.headers if name == CHAIN_HEAD_HEADER), "")
    return version, head

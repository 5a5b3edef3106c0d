"""The highest version at the end of the history topic, which a newly active writer must stay above.

The view's version comes from the log's commit markers. The history topic (one partition, one
``Mutation`` per version, key = the version in decimal) is written in the same transactions, so
normally it ends at the same version; if it ends higher (a stray or hand-written record, a log
restored from an older copy), reusing those versions would make the history ambiguous. Only the
tail is read: a window before the end, widened until it holds a record.

Example::

    version = max(view_version, await last_history_version(settings))
"""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.reading import committed_consumer, read_to_end
from eventconfig.settings import Settings

_FIRST_WINDOW = 16  # offsets; transaction markers take one each, so a few records fit


async def last_history_version(settings: Settings) -> int:
    """Highest version among the last records of the history topic; 0 when it has none."""
    tp = TopicPartition(settings.topics.history, 0)
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        consumer.assign([tp])
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        window = _FIRST_WINDOW
        while True:
            start = max(beginning, end - window)
            consumer.seek(tp, start)
            versions = [v async for batch in read_to_end(consumer, tp) for r in batch
                        if (v := record_version(r)) is not None]
            if versions or start == beginning:
                return max(versions, default=0)
            window *= 4
    finally:
        await consumer.stop()


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

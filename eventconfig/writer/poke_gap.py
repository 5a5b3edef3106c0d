"""Whether a writer taking over may write pokes itself, or must leave them to the projector for now.

A writer writes the pokes of its writes in their transaction (docs/design.md §7), after the pokes
already on the notify topic. Versions of an older writer (or of one with ``writer_pokes`` off) get
their pokes from the projector; while some of them still wait for it, pokes written by this writer
would come before theirs, out of version order. So a writer that takes over reads the log from the
projector group's committed offset (its beginning when there is none) to its end, and when a version
there still lacks its poke, it leaves every poke of this activation to the projector (as before:
two transactions per write) and writes them itself again from the next take-over on.

Example::

    session.pokes = not await projector_behind(settings, pokes)
    pokes.previous_version = await last_poke_version(settings, codec)   # the next poke's previous_version
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from eventconfig.codec import Codec
from eventconfig.errors import CodecError
from eventconfig.kafka.adapter import ConsumerRecord, TopicPartition
from eventconfig.kafka.reading import committed_consumer, read_to_end, tail_records
from eventconfig.kafka.topics import admin_client
from eventconfig.settings import Settings


class Unpoked(Protocol):
    previous_version: int | None

    def unpoked_check(self) -> Callable[[ConsumerRecord], bool]: ...


async def projector_behind(settings: Settings, pokes: Unpoked) -> bool:
    """Whether a version from the projector group's committed offset on still waits for its poke."""
    tp = TopicPartition(settings.topics.log, 0)
    async with admin_client(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(settings.group_id("projector"), partitions=[tp])
    committed = offsets.get(tp)
    consumer = committed_consumer(settings)
    await consumer.start()
    try:
        consumer.assign([tp])
        if committed is not None and committed.offset >= 0:
            consumer.seek(tp, committed.offset)
        else:
            await consumer.seek_to_beginning(tp)
        unpoked = pokes.unpoked_check()
        async for batch in read_to_end(consumer, tp):
            if any(map(unpoked, batch)):
                return True  # one version is enough: the rest of the log need not be read
        return False
    finally:
        await consumer.stop()


async def last_poke_version(settings: Settings, codec: Codec) -> int | None:
    """The version of the notify topic's last poke; 0 when it has none, None when it cannot be read."""
    records = await tail_records(settings, TopicPartition(settings.topics.notify, 0), lambda r: True)
    for record in reversed(records):
        try:
            return int(codec.decode("ConfigPush", record.value or b"")["version"])
        except CodecError:
            continue
    return None if records else 0

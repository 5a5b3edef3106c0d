"""Membership of a consumer group whose members share a topic's partitions (the read topic, docs/design.md §6).

Unlike the exclusive roles' :class:`~eventconfig.kafka.adapter.GroupMember`, which holds or waits for
one partition, every member here reads its share of the partitions and commits what it has handled,
so a member that dies or freezes leaves its unhandled records to the member the group gives its
partitions to. It also looks up the high watermark of another partition (the log's), with a consumer
of its own so that no long-poll fetch of the group's consumer delays the lookup.

Example::

    group = SharedGroup(settings, "d.readers", "d.read", TopicPartition("d.log", 0))
    await group.start()
    records = await group.fetch(timeout_ms=500, max_records=500)
    end = await group.high_watermark()
    ...; group.commit_soon({TopicPartition("d.read", 3): records[-1].offset + 1})
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from eventconfig.kafka.adapter import follow_promptly
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.settings import Settings

log = logging.getLogger(__name__)


class _Holding(ConsumerRebalanceListener):
    """Keeps the set of partitions the group gives this member, and reports its size on every change."""

    def __init__(self, report: Callable[[int], None]) -> None:
        self.held: set[TopicPartition] = set()
        self._report = report

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.held -= set(revoked)
        self._report(len(self.held))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.held |= set(assigned)
        self._report(len(self.held))


class SharedGroup:
    """Membership of ``group_id`` over the partitions of ``topic``, and the high watermark of ``watched``:
    its end offset counting open transactions. ``on_held(n)`` hears how many partitions of ``topic`` the
    group gives this member, whenever that changes (0 during a rebalance)."""

    def __init__(self, settings: Settings, group_id: str, topic: str, watched: TopicPartition,
                 on_held: Callable[[int], None] = lambda held: None) -> None:
        self.settings, self.group_id, self.topic, self.watched = settings, group_id, topic, watched
        self._holding = _Holding(on_held)
        self._consumer: AIOKafkaConsumer | None = None
        self._looker: AIOKafkaConsumer | None = None
        self._to_commit: dict[TopicPartition, int] = {}  # handled offsets not yet committed
        self._committing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A member that misses heartbeats for the session is replaced; its partitions go to the others.
        consumer = committed_consumer(self.settings, group_id=self.group_id,
                                      session_timeout_ms=self.settings.writer_session_timeout_ms,
                                      heartbeat_interval_ms=self.settings.writer_heartbeat_interval_ms,
                                      max_poll_interval_ms=300_000)
        looker = committed_consumer(self.settings, isolation_level="read_uncommitted")
        try:
            await consumer.start()
            await looker.start()
            follow_promptly(consumer, self.settings)  # a read waits neither for the loop's timer nor a frozen leader
        except BaseException:
            await asyncio.gather(consumer.stop(), looker.stop(), return_exceptions=True)
            raise
        consumer.subscribe([self.topic], listener=self._holding)
        self._consumer, self._looker = consumer, looker

    async def stop(self) -> None:
        if self._committing is not None:  # what was handled is committed, if the broker lets it soon
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._committing, self.settings.request_timeout_ms / 1000)
            self._committing = None
        consumers = [c for c in (self._consumer, self._looker) if c is not None]
        self._consumer = self._looker = None
        await asyncio.gather(*(c.stop() for c in consumers), return_exceptions=True)
        self._holding.on_partitions_revoked(set(self._holding.held))

    async def fetch(self, timeout_ms: int, max_records: int) -> list[ConsumerRecord]:
        """The next records of this member's partitions (waiting up to ``timeout_ms`` for the first)."""
        assert self._consumer is not None, "the group member has not started"
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [record for records in fetched.values() for record in records]

    def commit_soon(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (per partition, the offset after the last record handled) in the background.

        A commit costs the group coordinator a replicated write (about 6 ms here); awaited before the
        next fetch it put that on every read's path. Commits go out one at a time, each partition's
        highest offset winning. One that fails (a rebalance moved the partition) is logged: its new
        reader answers those records again, which for reads is harmless (docs/design.md §6)."""
        for tp, offset in offsets.items():
            self._to_commit[tp] = max(offset, self._to_commit.get(tp, 0))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_pending(), name="eventconfig-read-commits")

    async def _commit_pending(self) -> None:
        while self._to_commit and self._consumer is not None:
            offsets, self._to_commit = self._to_commit, {}
            try:
                await self._consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
            except KafkaError as exc:
                log.warning("could not commit the read offsets", extra={"fields": {
                    "error": str(exc) or type(exc).__name__, "partitions": len(offsets)}})

    async def high_watermark(self) -> int:
        """The end offset of ``watched`` now, open transactions included (a read_uncommitted lookup)."""
        assert self._looker is not None, "the group member has not started"
        return await end_offset(self._looker, self.watched)

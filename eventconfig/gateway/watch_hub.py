"""One notify-topic consumer per gateway app that feeds every ``/v1/watch`` stream.

The hub reads the notify topic with a single consumer (no group, read_committed), keeps the newest
``gateway_watch_ring_pokes`` pokes in a :class:`~eventconfig.gateway.watch_ring.PokeRing` and puts
each poke into the bounded :class:`~eventconfig.gateway.watch_ring.Inbox` of every open stream; the
streams filter what they pass on (policy, workspace, type) themselves. A stream that resumes from a
``Last-Event-ID`` the ring covers is served from memory; an older one reads the topic with a consumer
of its own (:class:`TopicReplay`) for as long as the replay takes. Its states:

    idle --first stream--> following --consumer error--> backing off (streams get Interrupted)
         ^                     |  ^                             |
         |                  stopping  `-------- reconnected ----'   (at its own position, or
         `---- stop() ------ stopped                                 Lagged to all when retention
                                                                     deleted pokes meanwhile)

Example::

    hub = WatchHub(settings, current=lambda: backend.version, stopping=app.state.stopping)
    with hub.subscribed() as inbox:
        opening = await hub.open(inbox, last_seen=41)
        ...; items = await inbox.take(15.0)
    await hub.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.gateway import metrics
from eventconfig.gateway.watch_ring import Closed, Inbox, Interrupted, Item, Lagged, Poke, PokeRing
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.settings import Settings
from eventconfig.tasks import Backoff, cancel

log = logging.getLogger(__name__)
T = TypeVar("T")
_POLL_MS = 500  # how soon the hub notices that the gateway is stopping
_TAIL_WINDOW = 64  # offsets read back from the end to find the last poke (markers take offsets too)
_CATCH_UP_WAIT_S = 10.0  # a stream waits this long, at most, for the hub's first read to the end


def needs_resync(beginning_offset: int, first_held_version: int | None, last_seen: int, current: int) -> bool:
    """True when pokes newer than ``last_seen`` may have been deleted by retention.

    Deleted pokes all precede the first one held, so nothing newer than ``last_seen`` is lost when
    ``last_seen`` reaches the version just before it, or when nothing was ever deleted. When every
    poke was deleted (a quiet day), the deleted ones are at or below ``current``, the version the
    gateway's view has applied: a client that saw that much lost nothing.
    """
    if beginning_offset == 0:
        return False
    if first_held_version is None:
        return last_seen < current
    return first_held_version - 1 > last_seen


def _decoded(records: list[ConsumerRecord]) -> list[tuple[int, Poke]]:
    """(offset, poke) of the records; undecodable ones are logged and skipped."""
    codec, pokes = default_codec(), []
    for record in records:
        try:
            pokes.append((record.offset, codec.decode("ConfigPush", record.value or b"")))
        except CodecError as exc:
            log.warning("watch: skipping an undecodable poke at offset %d: %s", record.offset, exc)
    return pokes


@dataclass
class Opening:
    """How a stream starts: ``ready`` or ``resync`` at ``version``; then ``pokes`` (from memory) and,
    for an older resume, the rest read from the topic by ``replay``."""

    kind: str
    version: int
    pokes: list[Poke] = field(default_factory=list)
    replay: TopicReplay | None = None

    async def replayed(self) -> AsyncIterator[list[Poke]]:
        """The pokes that follow the opening version, up to the topic's end when the stream opened."""
        if self.pokes:
            yield self.pokes
        if self.replay is not None:
            async for pokes in self.replay.rest():
                yield pokes
            await self.close()

    async def close(self) -> None:
        """Stop the replay's consumer, if any (also when the stream ends before it was read)."""
        if self.replay is not None:
            await self.replay.close()


class TopicReplay:
    """A resume older than the ring: a consumer of its own reads the notify topic from its beginning
    (``open``), then up to the end offset it saw (``rest``); ``close`` stops it."""

    def __init__(self, settings: Settings) -> None:
        self._tp = TopicPartition(settings.topics.notify, 0)
        self._consumer = committed_consumer(settings)
        self._end = 0
        self._open = False

    async def start(self) -> None:
        self._open = True
        metrics.WATCH_CONSUMERS.inc()
        await self._consumer.start()
        self._consumer.assign([self._tp])

    async def close(self) -> None:
        """Stop the consumer (again: nothing)."""
        if self._open:
            self._open = False
            metrics.WATCH_CONSUMERS.dec()
            await self._consumer.stop()

    async def open(self, last_seen: int, current: int, newest: int) -> Opening:
        """``ready`` after ``last_seen`` with the first pokes read, or ``resync`` at the newer of
        ``current``, ``newest`` and the last poke held when retention deleted pokes after it."""
        consumer, tp = self._consumer, self._tp
        beginning = int((await consumer.beginning_offsets([tp]))[tp])
        self._end = await end_offset(consumer, tp)
        consumer.seek(tp, beginning)
        first = await self._first_pokes()
        if not needs_resync(beginning, first[0]["version"] if first else None, last_seen, current):
            return Opening("ready", last_seen, first, self)
        consumer.seek(tp, max(beginning, self._end - _TAIL_WINDOW))
        version = max(current, newest)
        async for pokes in self.rest():
            version = max([version, *(poke["version"] for poke in pokes)])
        return Opening("resync", version)

    async def _first_pokes(self) -> list[Poke]:
        async for pokes in self.rest():
            if pokes:
                return pokes
        return []

    async def rest(self) -> AsyncIterator[list[Poke]]:
        while await self._consumer.position(self._tp) < self._end:
            batches = await self._consumer.getmany(self._tp, timeout_ms=_POLL_MS)
            yield [poke for _, poke in _decoded(batches.get(self._tp, []))]


class WatchHub:
    """The gateway app's one reader of the notify topic, its ring of recent pokes, and the inboxes of
    the open streams. Started by the first stream, stopped by :meth:`stop`; ends every stream when
    ``stopping`` is set."""

    def __init__(self, settings: Settings, current: Callable[[], int], stopping: asyncio.Event) -> None:
        self._settings = settings
        self._tp = TopicPartition(settings.topics.notify, 0)
        self._current, self._stopping = current, stopping
        self._ring = PokeRing(settings.gateway_watch_ring_pokes)
        self._inboxes: set[Inbox] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._next_offset: int | None = None  # where the hub reads next; None: not read yet
        self._newest = 0  # the newest poke version read
        self._caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lookup: asyncio.Future[Any] | None = None
        self._memo: dict[tuple[int, Hashable], Any] = {}  # what streams made of the last batch's pokes
        self._batch: set[int] = set()  # the versions of the last batch

    # --- streams ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribed(self) -> Iterator[Inbox]:
        """An inbox that gets every poke the hub reads from now on, until the block ends."""
        inbox = Inbox(self._settings.gateway_watch_queue_pokes)
        if self._stopping.is_set():
            inbox.put(Closed())
        self._inboxes.add(inbox)
        metrics.WATCH_STREAMS.inc()
        try:
            yield inbox
        finally:
            self._inboxes.discard(inbox)
            metrics.WATCH_STREAMS.dec()

    async def open(self, inbox: Inbox, last_seen: int | None) -> Opening:
        """How the stream of ``inbox`` starts (see :mod:`eventconfig.gateway.watch`): from the ring
        when it covers ``last_seen``, else from the topic."""
        opening = await self._opening(inbox, last_seen)
        inbox.opened(opening.version)  # no await since the opening was decided: no poke fell between
        return opening

    async def _opening(self, inbox: Inbox, last_seen: int | None) -> Opening:
        self._start()
        if not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CATCH_UP_WAIT_S):
                    await self._caught_up.wait()
        current = self._current()
        if last_seen is None:
            return Opening("ready", max(current, self._newest))
        if self._ring.covers(last_seen):
            beginning = await self._beginning()
            if beginning is not None and self._ring.covers(last_seen):  # (still: it moved on meanwhile)
                metrics.WATCH_RESUMES.labels("memory").inc()
                deleted, first_held = self._ring.first_held_after(beginning)
                if deleted and needs_resync(beginning, first_held, last_seen, current):
                    return Opening("resync", max(current, self._newest))
                return Opening("ready", last_seen, self._ring.after(last_seen))
        metrics.WATCH_RESUMES.labels("topic").inc()
        # A replay ends at the end it looked up; a poke written after that and read by the hub's first
        # read would reach neither the replay nor this inbox, so it takes them now (repeats are dropped).
        inbox.opened(last_seen)
        replay = TopicReplay(self._settings)
        try:
            await replay.start()
            opening = await replay.open(last_seen, current, self._newest)
        except BaseException:
            await replay.close()
            raise
        if opening.replay is None:
            await replay.close()
        return opening

    def memo(self, poke: Poke, key: Hashable, make: Callable[[], T]) -> T:
        """``make()`` once for all streams with the same ``key`` (their caller and filters) per poke
        of the hub's last batch; older pokes are made each time."""
        if poke["version"] not in self._batch:
            return make()
        memo_key = (poke["version"], key)
        if memo_key not in self._memo:
            self._memo[memo_key] = make()
        return cast(T, self._memo[memo_key])

    async def _beginning(self) -> int | None:
        """The notify topic's beginning offset now (None: the hub has no consumer); concurrent
        resumes share one lookup."""
        consumer = self._consumer
        if consumer is None:
            return None
        if self._lookup is None or self._lookup.done():
            self._lookup = asyncio.ensure_future(consumer.beginning_offsets([self._tp]))
        try:
            offsets = await asyncio.shield(self._lookup)
        except KafkaError:
            return None
        return int(offsets[self._tp])

    # --- the consumer ----------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None and not self._stopping.is_set():
            self._task = asyncio.create_task(self._run(), name="watch-hub")

    async def stop(self) -> None:
        """Stop reading and end every stream."""
        await cancel(self._task)
        self._task = None
        self._broadcast(Closed())

    async def _run(self) -> None:
        backoff = Backoff(0.2, 10.0)
        while not self._stopping.is_set():
            try:
                await self._follow(backoff)
            except Exception as exc:  # noqa: BLE001 - the one place a failure of the hub is handled
                delay = backoff.next()
                log.warning("watch hub: the notify consumer failed (%s); reconnecting in %.1f s", exc, delay,
                            exc_info=not isinstance(exc, KafkaError | OSError))
                metrics.WATCH_HUB_FAILURES.inc()
                self._broadcast(Interrupted(str(exc) or type(exc).__name__, int(delay * 1000)))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        self._broadcast(Closed())

    async def _follow(self, backoff: Backoff) -> None:
        consumer = committed_consumer(self._settings)
        metrics.WATCH_CONSUMERS.inc()
        try:
            await consumer.start()
            consumer.assign([self._tp])
            target = await self._position(consumer)
            self._consumer = consumer
            while not self._stopping.is_set():
                batches = await consumer.getmany(self._tp, timeout_ms=_POLL_MS)
                self._deliver(batches.get(self._tp, []))
                backoff.reset()
                if not self._caught_up.is_set() and await consumer.position(self._tp) >= target:
                    self._caught_up.set()
        finally:
            self._consumer = None
            metrics.WATCH_CONSUMERS.dec()
            await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer) -> int:
        """Seek where the hub reads next (first: the ring's worth before the end); the end offset."""
        beginning = int((await consumer.beginning_offsets([self._tp]))[self._tp])
        end = await end_offset(consumer, self._tp)
        start = self._next_offset
        if start is None:
            start = max(beginning, end - 2 * self._settings.gateway_watch_ring_pokes)  # markers take offsets
        elif start < beginning:  # retention deleted pokes the hub had not read while it was away
            self._ring.clear()
            self._broadcast(Lagged(max(self._current(), self._newest),
                                   "notify-topic retention deleted pokes while the gateway was reconnecting"))
            start = beginning
        consumer.seek(self._tp, start)
        return end

    def _deliver(self, records: list[ConsumerRecord]) -> None:
        pokes = _decoded(records)
        if pokes:
            self._memo.clear()
            self._batch = {poke["version"] for _, poke in pokes}
        catching_up = not self._caught_up.is_set()
        for offset, poke in pokes:
            self._newest = max(self._newest, poke["version"])
            self._ring.add(offset, poke)
            if catching_up:
                self._catch_up(poke)
            else:
                self._broadcast(poke)
        if records:
            self._next_offset = records[-1].offset + 1
            metrics.WATCH_RING_POKES.set(len(self._ring))

    def _broadcast(self, item: Item) -> None:
        for inbox in self._inboxes:
            if not inbox.put(item):
                metrics.WATCH_LAGGING.inc()

    def _catch_up(self, poke: Poke) -> None:
        """A poke of the hub's first read to the end: only for streams that opened without it.

        A stream still opening gets it from its opening: ``ready`` at the newest poke read, the ring
        or a topic replay. Queued there, the first read's pokes (up to twice the ring) would overflow
        every such inbox, count each stream as lagging and cost streams x ring puts at a gateway's
        start; only a stream that opened before the read ended (its wait timed out) needs them.
        """
        for inbox in self._inboxes:
            if inbox.lacks(poke["version"]) and not inbox.put(poke):
                metrics.WATCH_LAGGING.inc()

"""Reading the history topic: filtered listings, following, and replays into a state or a diff.

The history topic has one partition and one ``Mutation`` per successful write, in version order. It is
written inside the writer's transactions, so it is read ``read_committed``, and "the end" is the end
offset taken when a read starts (see :mod:`eventconfig.kafka.reading`). Every read starts at the
topic's first record, which is also how retention is checked: if that record's version is above 1
and the request needs older versions, :class:`OutOfRetention` is raised before anything is returned.

Example::

    async with HistoryReader(settings) as history:
        async for m in history.read(HistoryQuery(workspace="acme", key="system")):
            print(m.version, m.actor, [(c.previous, c.value) for c in m.changes])
        state = await history.state(at_version=42)
        diff = await history.diff(40, 42, workspace="acme")
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from eventconfig.audit.errors import CorruptHistory
from eventconfig.audit.query import HeldHistory, HistoryQuery, describe_range
from eventconfig.audit.records import Mutation, format_time
from eventconfig.audit.replay import Diff, DiffFold, Fold, State, StateFold, require_version
from eventconfig.codec import Codec, default_codec
from eventconfig.errors import CodecError, TopologyError
from eventconfig.kafka.connect import start
from eventconfig.kafka.reading import committed_consumer, end_offset, read_to_end, tail_of
from eventconfig.settings import Settings

# (phase, done, total): progress of a long read, in records (offsets) of the topic being read.
Progress = Callable[[str, int, int], None]

_POLL_MS = 200
_MAX_RECORDS = 10_000
_FIRST_WINDOW = 256  # offsets read back from the end for a newest-first page; widened x4 while short
_PROBE_BYTES = 64 * 1024  # a bisection probe wants one record: a fetch of at most this (or one batch)


class HistoryReader:
    """Reads the history topic of a deployment; one consumer, reused by every read.

    Example::

        async with HistoryReader(settings) as history:
            held = await history.held()       # first version still held, offsets
    """

    def __init__(self, settings: Settings, *, codec: Codec | None = None) -> None:
        self.settings = settings
        self._codec = codec or default_codec()
        self._tp = TopicPartition(settings.topics.history, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._probe: AIOKafkaConsumer | None = None  # small fetches, for the bisection of newest_first

    async def __aenter__(self) -> HistoryReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        consumer = committed_consumer(self.settings, request_timeout_ms=self.settings.request_timeout_ms)
        await start(consumer, self.settings)
        try:
            if self._tp.topic not in await consumer.topics():
                raise TopologyError(f"history topic {self._tp.topic} does not exist; run `eventconfig topics create`")
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        for consumer in (self._consumer, self._probe):
            if consumer is not None:
                await consumer.stop()
        self._consumer = self._probe = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise TopologyError("the history reader is not started; use `async with HistoryReader(...)`")
        return self._consumer

    async def _rewind(self) -> tuple[int, int]:
        """Position at the topic's first record; returns (beginning, end) offsets.

        A fresh assignment cancels the fetch the previous read may have left waiting at the end of the
        topic (the broker holds it for fetch.max.wait.ms); a plain seek would wait for it to return.
        """
        consumer = self.consumer
        consumer.assign([self._tp])
        beginning = int((await consumer.beginning_offsets([self._tp]))[self._tp])
        end = await end_offset(consumer, self._tp)
        consumer.seek(self._tp, beginning)
        return beginning, end

    async def held(self) -> HeldHistory:
        """What the topic holds now: offsets and the first mutation (a cheap read of one record)."""
        beginning, end = await self._rewind()
        while await self.consumer.position(self._tp) < end:
            records = (await self.consumer.getmany(self._tp, timeout_ms=_POLL_MS, max_records=1)).get(self._tp)
            if records:
                return HeldHistory(beginning, end, self._decode(records[0]))
        return HeldHistory(beginning, end, None)

    async def head(self) -> int | None:
        """The last version the history holds (0 when empty); None when retention deleted every record."""
        beginning, _ = await self._rewind()
        records = await tail_of(self.consumer, self._tp, lambda _: True, first_window=8)
        if records:
            return self._decode(records[-1]).version
        return None if beginning else 0

    async def require_held(self, *versions: int | None) -> None:
        """VersionNotFound if any of ``versions`` is past the last version the history holds."""
        asked = max((v for v in versions if v is not None), default=0)
        if asked:
            head = await self.head()
            if head is not None:
                require_version(asked, head)

    def _decode(self, record: ConsumerRecord) -> Mutation:
        try:
            if record.value is None:
                raise CodecError("the record has no value")
            return Mutation.from_wire(self._codec.decode("Mutation", record.value), record.offset)
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            raise CorruptHistory(f"history record at offset {record.offset} of {self._tp.topic} is not a "
                                 f"Mutation: {exc}") from exc

    async def records(self, progress: Progress | None = None) -> AsyncGenerator[ConsumerRecord, None]:
        """Every record held, undecoded, in offset order: for checks that must go on past a record that
        is not a Mutation (see :mod:`eventconfig.audit.chain`)."""
        beginning, end = await self._rewind()
        async for batch in read_to_end(self.consumer, self._tp, until=end):
            if progress is not None:
                progress("history", batch[-1].offset + 1 - beginning, end - beginning)
            for record in batch:
                yield record

    async def mutations(self, *, from_version: int | None = None, since_ms: int | None = None,
                        purpose: str = "the request", follow: bool = False,
                        progress: Progress | None = None) -> AsyncGenerator[Mutation, None]:
        """Every mutation from the topic's first record on, in order; with ``follow`` it never ends.

        Before the first one is returned, the topic's start is checked against ``from_version`` and
        ``since_ms`` (what ``purpose`` needs): OutOfRetention if retention deleted any of it.
        """
        consumer, tp = self.consumer, self._tp
        beginning, end = await self._rewind()
        checked = False
        while True:
            position = await consumer.position(tp)
            if progress is not None and not follow:
                progress("history", min(position, end) - beginning, end - beginning)
            if position >= end and not checked:  # nothing held (or only aborted records) at all
                HeldHistory(beginning, end, None).require(version=from_version, time_ms=since_ms, purpose=purpose)
                checked = True
            if position >= end and not follow:
                return
            records = (await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)).get(tp, [])
            for record in records:
                mutation = self._decode(record)
                if not checked:
                    HeldHistory(beginning, end, mutation).require(version=from_version, time_ms=since_ms,
                                                                  purpose=purpose)
                    checked = True
                yield mutation

    async def read(self, query: HistoryQuery, *, follow: bool = False,
                   progress: Progress | None = None) -> AsyncGenerator[Mutation, None]:
        """The mutations ``query`` selects, in version order; with ``follow``, new ones as they commit.

        A query bounded below (``from_version``/``since_ms``) that reaches before the first held
        mutation raises OutOfRetention; an unbounded one lists what is held (check :meth:`held`).
        A listing is a filter: one past the last version selects nothing and is empty (a poller asks
        ``from_version`` = last seen + 1), unless ``follow`` waits for what comes.
        """
        stream = self.mutations(from_version=query.from_version, since_ms=query.since_ms,
                                purpose=describe_range(query), follow=follow, progress=progress)
        async with aclosing(stream):
            async for mutation in stream:
                if query.past_end(mutation):
                    return
                selected = query.select(mutation)
                if selected is not None:
                    yield selected

    async def newest_first(self, query: HistoryQuery, *, window: int = _FIRST_WINDOW,
                           progress: Progress | None = None) -> AsyncGenerator[Mutation, None]:
        """The mutations ``query`` selects, newest first, read backwards from the end (or from
        ``to_version``) in growing windows of offsets: a page of the newest costs about what it shows,
        not a read of the whole topic. Retention is checked first, and a range past the last version
        selects nothing, as in :meth:`read`. ``progress`` gets the offsets read so far (from the end)
        and the offsets held.

        Offsets grow with versions (one partition, one record per version; transaction markers take
        offsets too), so the offset after ``to_version`` is found by bisection.
        """
        if query.bounded_below:  # reads the first record: only when the query may need older ones
            (await self.held()).require(version=query.from_version, time_ms=query.since_ms,
                                        purpose=describe_range(query))
        beginning, end = await self._rewind()
        top = end if query.to_version is None else await self._offset_after(query.to_version, beginning, end)
        read, held_offsets = 0, end - beginning
        while top > beginning:
            start = max(beginning, top - window)
            read += top - start
            if progress is not None:
                progress("history", read, held_offsets)
            for record in reversed(await self._between(start, top)):
                mutation = self._decode(record)
                if query.from_version is not None and mutation.version < query.from_version:
                    return
                selected = query.select(mutation)
                if selected is not None:
                    yield selected
            top, window = start, min(window * 4, _MAX_RECORDS)

    async def _between(self, start: int, stop: int) -> list[ConsumerRecord]:
        """The committed records at offsets ``start`` to ``stop - 1``."""
        self.consumer.seek(self._tp, start)
        return [r async for batch in read_to_end(self.consumer, self._tp, until=stop) for r in batch
                if r.offset < stop]

    async def _first_at(self, offset: int, end: int) -> Mutation | None:
        """The first committed mutation at ``offset`` or after it (before ``end``), or None."""
        if self._probe is None:
            probe = committed_consumer(self.settings, max_partition_fetch_bytes=_PROBE_BYTES,
                                       fetch_max_bytes=_PROBE_BYTES)
            await start(probe, self.settings)
            probe.assign([self._tp])
            self._probe = probe
        self._probe.seek(self._tp, offset)
        while await self._probe.position(self._tp) < end:
            records = (await self._probe.getmany(self._tp, timeout_ms=_POLL_MS, max_records=1)).get(self._tp)
            if records:
                return self._decode(records[0]) if records[0].offset < end else None
        return None

    async def _offset_after(self, version: int, beginning: int, end: int) -> int:
        """The offset after the record of ``version``: the lowest one from which every record is newer."""
        low, high = beginning, end
        while low < high:
            middle = (low + high) // 2
            first = await self._first_at(middle, end)
            if first is None or first.version > version:
                high = middle
            else:
                low = middle + 1
        return low

    async def replay(self, fold: Fold, *, purpose: str, progress: Progress | None = None,
                     to_end: bool = False) -> int:
        """Feed ``fold`` from the history until it has what it needs; returns the last version read.

        With ``to_end`` the read continues to the end (without folding) to learn the last version.
        """
        last = 0
        folding = True
        stream = self.mutations(from_version=fold.start_version + 1, purpose=purpose, progress=progress)
        async with aclosing(stream):
            async for mutation in stream:
                last = mutation.version
                if folding and not fold.feed(mutation):
                    folding = False
                    if not to_end:
                        break
        return last

    async def state(self, *, at_version: int | None = None, at_time_ms: int | None = None,
                    workspace: str | None = None, progress: Progress | None = None) -> State:
        """The configuration as of a version or a time (of one workspace, or all), replayed from version 1.

        Raises OutOfRetention when version 1 is no longer held, VersionNotFound beyond the last version.
        """
        fold = StateFold(at_version=at_version, at_time_ms=at_time_ms, workspace=workspace)
        if at_version != 0:
            point = f"version {at_version}" if at_version is not None else format_time(at_time_ms or 0)
            await self.replay(fold, purpose=f"the state as of {point} (replayed from version 1)", progress=progress)
        return fold.finish()

    async def diff(self, from_version: int, to_version: int, *, workspace: str | None = None,
                   progress: Progress | None = None) -> Diff:
        """Added, removed and changed keys between two versions; needs only the mutations in between."""
        fold = DiffFold(from_version, to_version, workspace)
        if from_version == to_version:  # nothing to fold, but the version must exist all the same
            await self.require_held(from_version)
        else:
            last = await self.replay(fold, purpose=f"the diff from version {from_version} to {to_version}",
                                     progress=progress)
            require_version(max(from_version, to_version), last)  # names where the history really ends
        return fold.finish()

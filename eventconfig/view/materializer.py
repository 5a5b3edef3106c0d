"""The thin async adapter between the log topic and the view: consume, apply, write, wake waiters.

Everything that decides what the view contains lives in :mod:`~eventconfig.view.apply` (pure) and
:mod:`~eventconfig.view.store` (RocksDB); this module only moves records and keeps positions.
"Caught up" is ``position >= end offset`` taken at the time of asking, never "last record + 1":
transaction markers take offsets and are never delivered (see :mod:`eventconfig.kafka.reading`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError

from eventconfig import metrics
from eventconfig.errors import ViewError
from eventconfig.kafka.adapter import follow_promptly
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.kafka.topics import admin_client, check_topics, log_delete_retention_ms
from eventconfig.model import Offset, Version
from eventconfig.settings import Settings
from eventconfig.view import store as store_module
from eventconfig.view.apply import Applier, ViewWrites
from eventconfig.view.store import (ViewCorruptError, ViewLockedError, ViewMeta, ViewStore, ViewStoreOptions,
                                    ViewUnavailableError)
from eventconfig.tasks import Backoff, cancel, off_loop

log = logging.getLogger(__name__)

_POLL_MS = 200
_MAX_RECORDS = 10_000
# The event loop gets a turn between slices of this many records decoded (Avro decoding holds the GIL);
# writes of more items than _OFF_LOOP_ITEMS go to a worker thread (rocksdict releases the GIL).
_DECODE_SLICE = 500
_OFF_LOOP_ITEMS = 500
_PROGRESS_S = 2.0
_MARK_CAUGHT_UP_S = 5.0
_BACKOFF_S = (0.1, 5.0)


_RECHECK_S = 1.0
# While replaying, a view writes out what it buffered, incomplete versions included, beyond this many
# records: a compacted log may hold a single commit marker at its end (see view/apply.py).
REPLAY_FLUSH_RECORDS = 20_000


class Materializer:
    """Keeps a local RocksDB view equal to a prefix of the log, one complete version at a time.

    Example::

        materializer = Materializer(settings); await materializer.start()
        version = await materializer.wait_caught_up(30.0); view = materializer.store.snapshot()
    """

    def __init__(self, settings: Settings, path: Path | None = None, *, name: str = "service",
                 cache_items: int = 0) -> None:
        self.settings = settings
        self.path = Path(path) if path is not None else settings.data_dir / "view"
        self.options = ViewStoreOptions(write_buffer_bytes=settings.view_write_buffer_bytes,
                                        max_write_buffers=settings.view_max_write_buffers,
                                        block_cache_bytes=settings.view_block_cache_bytes, cache_items=cache_items)
        self._lag = metrics.LOG_LAG.labels(name)  # records of the log not yet in this view
        self.records_applied = 0  # records consumed from the log since start()
        self.rebuild_reason: str | None = None  # why start() rebuilt the view, None if it did not
        self._tp = TopicPartition(settings.topics.log, 0)
        self._store: ViewStore | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._applier = Applier(Version(0))
        self._position = 0  # everything consumed below this log position is in the store
        self._read_position = 0  # the consumer's position (complete versions or not)
        self._ready = False  # the initial replay has reached the end offset taken at start
        self._changed = asyncio.Event()
        self._failure: BaseException | None = None
        self._started = self._last_log = self._last_mark = 0.0
        self._listeners: list[Callable[[ViewWrites], None]] = []

    @property
    def store(self) -> ViewStore:
        """The view; raises once the materializer has died, so nobody reads a view that stopped moving."""
        if self._failure is not None and self._task is not None:
            raise ViewError(f"the view of {self._tp.topic} stopped following the log: {self._failure!r}")
        if self._store is None:
            raise ViewError("the materializer is not started")
        return self._store

    async def wait(self) -> None:
        """Return only if the materializer stops; raise ViewError when it died (services watch this)."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._failure is not None:
            raise ViewError(f"the view of {self._tp.topic} stopped following the log: {self._failure!r}")

    @property
    def version(self) -> int:
        return self.store.version

    @property
    def position(self) -> int:
        return self._position

    @property
    def ready(self) -> bool:
        return self._ready

    def hold(self) -> None:
        """Stop following the log until :meth:`release`: the view keeps its state and falls behind.

        A view that lags on purpose, for fault-injection tests (a slow or stuck fetch)."""
        assert self._consumer is not None, "the view has not started"
        self._consumer.pause(self._tp)

    def release(self) -> None:
        """Follow the log again after :meth:`hold`."""
        assert self._consumer is not None, "the view has not started"
        self._consumer.resume(self._tp)

    async def start(self) -> None:
        """Open (or rebuild) the view, seek to its stored offset and start applying the log."""
        self._failure, self._ready, self.records_applied, self.rebuild_reason = None, False, 0, None
        consumer = committed_consumer(self.settings, auto_offset_reset="none")
        try:
            await consumer.start()
            follow_promptly(consumer, self.settings)  # a read waiting for the view: no timer, no frozen leader
            async with admin_client(self.settings) as admin:  # one partition, compacted: or refuse
                await check_topics(admin, self.settings, roles={"log"})
                retention_ms = await log_delete_retention_ms(admin, self.settings)
            consumer.assign([self._tp])
            beginning = int((await consumer.beginning_offsets([self._tp]))[self._tp])
            end = await end_offset(consumer, self._tp)
            store = await self._open_store(beginning, end, retention_ms)
        except BaseException:
            await consumer.stop()
            raise
        meta = store.meta()
        self._store, self._consumer = store, consumer
        self._applier = Applier(meta.version)
        self._position = max(meta.offset, beginning)
        consumer.seek(self._tp, self._position)
        log.info("view opened", extra={"fields": {"path": self.path, "offset": meta.offset, "version": meta.version,
                                                  "log_end": end, "rebuilt": self.rebuild_reason is not None}})
        self._task = asyncio.create_task(self._run(end), name=f"materializer:{self._tp.topic}")

    async def _open_store(self, beginning: int, end: int, retention_ms: int) -> ViewStore:
        """Open the view, rebuilding it only when it is corrupt or cannot follow this log."""
        try:
            store = await self._open_waiting()
        except ViewCorruptError as exc:
            return self._rebuild(str(exc))
        reason = self._rebuild_reason(store.meta(), beginning, end, retention_ms)
        if reason is None:
            return store
        store.close()
        return self._rebuild(reason)

    async def _open_waiting(self) -> ViewStore:
        """Open the view, retrying a lock (its previous owner may be shutting down) or a refusal of the
        system (permission, disk full, file limit) with backoff until ``view_open_wait_ms``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.view_open_wait_ms / 1000
        backoff = Backoff(*_BACKOFF_S)
        while True:
            try:
                return ViewStore.open(self.path, self.options)
            except (ViewLockedError, ViewUnavailableError) as exc:
                wait = min(backoff.next(), deadline - loop.time())
                if wait <= 0:
                    raise type(exc)(f"{exc}; gave up after {self.settings.view_open_wait_ms} ms "
                                    "(view_open_wait_ms)") from exc
                log.warning("cannot open the view yet; retrying", extra={"fields": {
                    "path": self.path, "error": str(exc), "retry_in_s": round(wait, 3)}})
                await asyncio.sleep(wait)

    def _rebuild(self, reason: str) -> ViewStore:
        log.warning("rebuilding the view from the log", extra={"fields": {"path": self.path, "reason": reason}})
        self.rebuild_reason = reason
        ViewStore.destroy(self.path)
        return ViewStore.open(self.path, self.options)

    def _rebuild_reason(self, meta: ViewMeta, beginning: int, end: int, retention_ms: int) -> str | None:
        """Why this view cannot simply resume from its offset (``retention_ms``: the log topic's
        delete.retention.ms), or None."""
        if meta.format_version != store_module.FORMAT_VERSION:
            return f"format version {meta.format_version}, this code writes {store_module.FORMAT_VERSION}"
        if meta.offset > end:
            return f"its offset {meta.offset} is beyond the log's end {end} (was the log topic recreated?)"
        if 0 < meta.offset < beginning:
            return f"its offset {meta.offset} is below the log's beginning {beginning}"
        if meta.offset > 0 and meta.caught_up_ms == 0 and meta.offset < end:
            # Its first replay never finished: it could have been down for any length of time.
            return "its first replay never finished"
        offline_ms = int(time.time() * 1000) - meta.caught_up_ms
        # Compaction may have dropped tombstones it never saw; with nothing new in the log it missed none.
        if meta.caught_up_ms > 0 and meta.offset < end and offline_ms > retention_ms:
            return f"it was offline {offline_ms} ms, longer than the log's delete.retention.ms {retention_ms}"
        return None

    async def _run(self, target: int) -> None:
        """Poll, apply, write; Kafka errors are retried with backoff, anything else stops the view loudly."""
        assert self._consumer is not None
        consumer = self._consumer
        self._started = self._last_log = self._last_mark = time.monotonic()
        backoff = Backoff(*_BACKOFF_S)
        try:
            self._progress(target)
            while True:
                try:
                    batches = await consumer.getmany(self._tp, timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
                    position = await consumer.position(self._tp)
                except OffsetOutOfRangeError as exc:
                    raise ViewError(f"offset {self._position} of {self._tp.topic} no longer exists; "
                                    "restart to rebuild the view") from exc
                except KafkaError as exc:
                    wait = backoff.next()
                    log.warning("reading the log failed; retrying", extra={"fields": {
                        "error": repr(exc), "retry_in_s": wait}})
                    await asyncio.sleep(wait)
                    continue
                backoff.reset()
                await self._apply(batches.get(self._tp, []), Offset(position))
                self._progress(target)
                self._report_lag(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded, logged, and raised to every waiter
            self._failure = exc
            log.error("the materializer stopped", exc_info=True, extra={"fields": {"topic": self._tp.topic}})
            self._notify()

    def _progress(self, target: int) -> None:
        """Log the initial replay, declare it done, and keep caught_up_ms fresh while at the end."""
        now = time.monotonic()
        if not self._ready:
            if self._position < target:
                if now - self._last_log >= _PROGRESS_S:
                    self._last_log = now
                    log.info("catching up", extra={"fields": {
                        "read": self._read_position, "target": target, "records": self.records_applied}})
                return
            self._ready = True
            elapsed = max(now - self._started, 1e-6)
            log.info("caught up", extra={"fields": {
                "version": self.store.version, "offset": self._position, "records": self.records_applied,
                "seconds": round(elapsed, 3), "records_per_s": int(self.records_applied / elapsed)}})
            self._mark_caught_up(now)
            self._notify()
        elif now - self._last_mark >= _MARK_CAUGHT_UP_S:
            assert self._consumer is not None
            stable = self._consumer.last_stable_offset(self._tp)  # from the last fetch response
            if stable is not None and self._position >= stable:
                self._mark_caught_up(now)

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        stable = consumer.last_stable_offset(self._tp)  # known from the last fetch: no extra request
        if stable is not None:
            self._lag.set(max(0, stable - self._position))

    def _mark_caught_up(self, now: float) -> None:
        self._last_mark = now
        self.store.mark_caught_up(int(time.time() * 1000))

    async def _apply(self, records: list[ConsumerRecord], position: Offset) -> None:
        """Decode in bounded slices and write large batches off the loop, so heartbeats, pokes and
        reads never stall behind a 10,000-item write. Nothing else touches the applier meanwhile, and
        the store write stays one WriteBatch: readers see all of a version or none of it."""
        applier, self._read_position = self._applier, position
        for start in range(0, len(records), _DECODE_SLICE):
            if start:
                await asyncio.sleep(0)
            for record in records[start:start + _DECODE_SLICE]:
                applier.add(record.offset, record.key, record.value, record.headers)
        self.records_applied += len(records)
        if not self._ready and applier.buffered > REPLAY_FLUSH_RECORDS:
            writes = applier.take_all(position)  # nobody reads a view that has not caught up yet
        else:
            writes = applier.take(position)
        if writes is not None:
            if len(writes.ops) > _OFF_LOOP_ITEMS:
                await off_loop(self.store.write, writes)
            else:
                self.store.write(writes)
            if self._ready:
                for listener in self._listeners:
                    listener(writes)
        moved = applier.buffered == 0 and position > self._position
        if moved:
            self._position = position
        # Aborted transactions and markers move the position with no record to show for it: waiters
        # for "caught up" must hear of that too.
        if writes is not None or records or moved:
            self._notify()

    def add_listener(self, listener: Callable[[ViewWrites], None]) -> None:
        """Call ``listener`` with every batch of complete versions written once the view is caught up
        (the initial replay is not announced: readers fetch the state they need when ready)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """The read-after-write primitive: wait until ``condition`` holds; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._failure is None and self._store is None:
                raise ViewError("the materializer is not started")
            if self._failure is not None:
                raise ViewError(f"the materializer of {self._tp.topic} stopped: {self._failure!r}") from self._failure
            if condition():
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):  # re-check now and then, whatever woke us or not
                await asyncio.wait_for(self._changed.wait(), min(remaining, _RECHECK_S))

    async def wait_caught_up(self, timeout: float) -> int:
        """Wait until the view has applied the log up to its end offset as of now; returns the version.

        Raises TimeoutError when it takes longer than ``timeout`` s, ViewError when the materializer died.
        """
        if self._consumer is None:
            raise ViewError("the materializer is not started")
        deadline = asyncio.get_running_loop().time() + timeout
        target = await asyncio.wait_for(end_offset(self._consumer, self._tp), timeout)
        remaining = deadline - asyncio.get_running_loop().time()
        if not await self._wait(lambda: self._ready and self._position >= target, remaining):
            raise TimeoutError(f"the view did not reach offset {target} of {self._tp.topic} within {timeout} s "
                               f"(at {self._position})")
        return self.version

    async def wait_for_version(self, version: int, timeout: float) -> bool:
        """True once the view holds ``version`` (and has finished its initial replay); False on timeout."""
        return await self._wait(lambda: self._ready and self.version >= version, timeout)

    async def changed(self, timeout: float) -> None:
        """Return when the view moves (a new version or position), or after ``timeout`` s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def stop(self) -> None:
        """Stop applying, close the consumer and the store; later waits raise ViewError."""
        await cancel(self._task)
        self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._failure is None:
            self._failure = ViewError("stopped")
        self._notify()

"""Rebuilding a local view from the log, and verifying a view against the history.

Both drive the ordinary :class:`~eventconfig.view.Materializer` (the one home of "log -> view"), so a
rebuilt view is exactly what the service would build, and a verified view is compared in the state
the service would serve. A view open in a running process is never touched: RocksDB's lock makes
that a :class:`~eventconfig.view.ViewLockedError`, reported with what to do.

Example::

    result = await rebuild_view(settings)                 # wipes settings.data_dir / "view" first
    report = await verify_view(settings)                   # catches the view up, then compares
    report = await verify_view(settings, scratch=True)     # the log itself, in a temporary view
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition

from eventconfig.audit.history import HistoryReader, Progress
from eventconfig.audit.replay import StateFold
from eventconfig.audit.verify import VerifyReport, compare
from eventconfig.errors import TopologyError, ViewError
from eventconfig.kafka.connect import started
from eventconfig.kafka.reading import committed_consumer, end_offset
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings
from eventconfig.view import Materializer, ViewLockedError, ViewStore

_CATCH_UP_TIMEOUT_S = 3600.0
_PROGRESS_EVERY_S = 0.1


def view_path(settings: Settings, path: Path | None = None) -> Path:
    """The view a command works on: ``path``, or the service's own (``data_dir / "view"``)."""
    return Path(path) if path is not None else settings.data_dir / "view"


@dataclass(frozen=True)
class RebuildResult:
    path: Path
    records: int  # log records read
    seconds: float
    version: int
    offset: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def rebuild_view(settings: Settings, path: Path | None = None, *, progress: Progress | None = None,
                       timeout: float = _CATCH_UP_TIMEOUT_S) -> RebuildResult:
    """Delete the view at ``path`` and rebuild it from the whole log; refuses a view in use."""
    path = view_path(settings, path)
    target = await _log_end(settings)  # fails on a missing log topic before anything is deleted
    if (path / "CURRENT").exists():
        with _locked_hint():
            try:
                ViewStore.open(path).close()  # takes and releases RocksDB's lock: is anyone using it?
            except ViewLockedError:
                raise
            except ViewError:
                pass  # unusable as it is: exactly what a rebuild replaces
    ViewStore.destroy(path)
    async with _caught_up(settings, path, target, progress, timeout) as (materializer, seconds):
        meta = materializer.store.meta()
        records = materializer.records_applied
    return RebuildResult(path, records, seconds, meta.version, meta.offset)


async def verify_view(settings: Settings, path: Path | None = None, *, catch_up: bool = True,
                      scratch: bool = False, progress: Progress | None = None,
                      timeout: float = _CATCH_UP_TIMEOUT_S) -> VerifyReport:
    """Replay the history into a scratch state and compare it with a view, key by key.

    The view is ``path`` (default: the service's), caught up with the log first unless ``catch_up`` is
    False (then a view behind the history is a difference); with ``scratch`` it is a temporary view
    built from the whole log, which checks the log itself while the service keeps running.
    """
    notes: list[str] = []
    if scratch:
        with tempfile.TemporaryDirectory(prefix="eventconfig-verify-") as tmp:
            target = await _log_end(settings)
            async with _caught_up(settings, Path(tmp) / "view", target, progress, timeout) as (materializer, _):
                view_version, items = _contents(materializer.store)
        notes.append("the view is a scratch view built from the whole log")
    else:
        path = view_path(settings, path)
        if not (path / "CURRENT").exists():
            raise ViewError(f"there is no view at {path}; give its --path, or use --scratch to verify the log")
        if catch_up:
            target = await _log_end(settings)
            async with _caught_up(settings, path, target, progress, timeout) as (materializer, _):
                if materializer.rebuild_reason:
                    notes.append(f"the view was rebuilt before the comparison: {materializer.rebuild_reason}")
                view_version, items = _contents(materializer.store)
        else:
            with _locked_hint(), ViewStore.open(path) as store:
                view_version, items = _contents(store)
    fold = StateFold(at_version=view_version)
    async with HistoryReader(settings) as history:
        last = await history.replay(fold, purpose=f"verifying the view at version {view_version}",
                                    progress=progress, to_end=True)
    state = fold.state()
    return compare(state.items, state.version, items, view_version, last,
                   view_may_lag=catch_up or scratch, notes=notes)


def _contents(store: ViewStore) -> tuple[int, list[tuple[ItemKey, Entry]]]:
    with store.snapshot() as snapshot:
        return snapshot.version, list(snapshot.scan_all())


@contextlib.contextmanager
def _locked_hint() -> Iterator[None]:
    try:
        yield
    except ViewLockedError as exc:
        raise ViewLockedError(f"{exc}; stop the process that uses it first (`verify --scratch` checks the "
                              "log without touching it)") from exc


@contextlib.asynccontextmanager
async def _caught_up(settings: Settings, path: Path, target: int, progress: Progress | None,
                     timeout: float) -> AsyncIterator[tuple[Materializer, float]]:
    """A materializer on ``path`` that has applied the log up to offset ``target``, and the seconds
    from its start to there; stopped on exit."""
    materializer = Materializer(settings, path)
    started = time.monotonic()
    with _locked_hint():
        await materializer.start()
    try:
        # Polled against our own target rather than wait_caught_up(), whose ListOffsets request queues
        # behind the materializer's idle fetch (up to fetch.max.wait.ms) and would skew records/s.
        while not (materializer.ready and materializer.position >= target):
            if progress is not None:
                progress("log", min(materializer.position, target), target)
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the view at {path} did not reach offset {target} of the log within {timeout} s")
            if await materializer.wait_for_version(0, _PROGRESS_EVERY_S):  # ViewError if it died
                await asyncio.sleep(_PROGRESS_EVERY_S / 10)  # ready, still short of the target: poll
        seconds = time.monotonic() - started
        if progress is not None:
            progress("log", target, target)
        yield materializer, seconds
    finally:
        await materializer.stop()


async def _log_end(settings: Settings) -> int:
    """The log topic's end offset now; TopologyError if there is no log topic."""
    topic = settings.topics.log
    consumer = committed_consumer(settings, request_timeout_ms=settings.request_timeout_ms)
    async with started(consumer, settings):
        if topic not in await consumer.topics():
            raise TopologyError(f"log topic {topic} does not exist; run `eventconfig topics create`")
        return await end_offset(consumer, TopicPartition(topic, 0))

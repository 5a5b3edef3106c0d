"""The writer role: the exclusive ``writer`` role over the request topic.

Taking over (see :mod:`eventconfig.kafka.exclusive` for the states) fences the previous writer, then waits until
this process's view has read the log to its end, checks that the history topic ends at the log's last
commit marker (else it refuses to write: :mod:`eventconfig.writer.history_tail`), and continues the
versions and the hash chain from there. The writes and errors of each batch of requests
become one transaction holding the log, history, response and DLQ records, the pokes of the writes
(docs/design.md §7) plus the request offsets (group commit, exactly-once request processing). Reads take no transaction: the
:class:`~eventconfig.writer.reads.ReadAnswerer` answers them from the view once the transactions
holding the requests before them have committed (docs/design.md §6). The committed offset's metadata names the reads not
answered yet, which the next writer reads again after a fail-over; a stretch of reads alone is
committed now and then with a plain offset commit, so a fail-over does not answer it all again.

Batches are pipelined (:class:`~eventconfig.kafka.commits.CommitPipeline`): batch N+1 is handled
(pure CPU) on top of batch N's results while N's transaction commits, and its transaction begins
once N's has committed. Nothing of N+1 is visible before N is, and if N fails both are redone from
committed state: :meth:`Writer.abandon` is the writer's one handler of a failed commit. A
transaction the broker refuses for good is redone one request at a time
(:mod:`eventconfig.writer.refusals`).

Everything the writer learns while active lives in one :class:`Session`, made new by each take-over.

Example::

    writer = Writer(settings, materializer)
    await writer.run()          # until cancelled; active while this process holds the partition
"""

from __future__ import annotations

import functools
import logging
import time
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventconfig import metrics
from eventconfig.codec import default_codec
from eventconfig.errors import EventConfigError
from eventconfig.kafka.adapter import ConsumerRecord, KafkaError
from eventconfig.kafka.exclusive import ExclusiveRole, Resume
from eventconfig.kafka.records import OutRecord
from eventconfig.kafka.topics import admin_client
from eventconfig.kafka.transactions import RecordRefused
from eventconfig.model import ID_HEADER, Entry, ItemKey, Version
from eventconfig.settings import Settings
from eventconfig.tasks import off_loop
from eventconfig.view.materializer import Materializer
from eventconfig.writer.auth import Keyring, authenticator
from eventconfig.writer.batch import BatchConfig, BatchResult, RawRequest, process_batch, read_requests
from eventconfig.writer.handler import Limits
from eventconfig.writer.history_tail import continuation, history_end
from eventconfig.writer.parking import parked_metadata, parked_span
from eventconfig.writer.poke_gap import Unpoked, last_poke_version, projector_behind
from eventconfig.writer.policy import Policy
from eventconfig.writer.reads import ReadAnswerer
from eventconfig.writer.refusals import Refusals
from eventconfig.writer.rules import ServiceRules
from eventconfig.writer.resume_point import ResumePoint, furthest, last_stamped, stamped

log = logging.getLogger(__name__)

_CATCH_UP_TIMEOUT_S = 600.0
_READS_COMMIT_S = 1.0  # a stretch of reads alone commits its request offset at most this often
_OFF_LOOP_BYTES = 64 * 1024  # batches of more request bytes are handled in a worker thread



class PokeMaker(Unpoked, Protocol):
    """Makes the pokes of a transaction's writes (see eventconfig.push.writes)."""

    def __call__(self, log: Sequence[OutRecord], writes: Sequence[tuple[int, Mapping[ItemKey, Entry | None]]]
                 ) -> tuple[list[OutRecord], list[OutRecord]]:
        """(the log records with their commit markers flagged as poked, poke records for the notify topic)"""


@dataclass
class Session:
    """What the writer knows during one activation; a take-over starts a new one."""

    version: Version = Version(0)  # the last version assigned (committed or in flight)
    chain_head: str = ""  # the history's chain head after ``version`` (docs/design.md §14.3)
    position: int | None = None  # the next request offset to commit: every request before it is consumed
    # Committed or in-flight changes the view may not have applied yet, one segment per batch: (version, changes).
    unapplied: list[tuple[int, dict[ItemKey, Entry | None]]] = field(default_factory=list)
    recovered: list[RawRequest] = field(default_factory=list)  # reads a predecessor left unanswered, handled first
    last_batch: int = 0  # requests in the last batch (a busy writer lingers for more)
    offset_committed: float = 0.0  # monotonic time of the last commit of the request offset
    uncommitted: bool = False  # reads alone moved the position past the committed offset
    pokes: bool = False  # this activation writes the pokes of its writes (eventconfig.writer.poke_gap)


@dataclass(frozen=True)
class _Batch:
    """A batch's part in its transaction: its request offsets and timestamps, when it started."""

    offsets: list[int]
    timestamps: list[int]
    started: float


class Writer(ExclusiveRole):
    """Turns each batch of requests into one transaction while this process is the active writer."""

    def __init__(self, settings: Settings, materializer: Materializer, pokes: PokeMaker | None = None) -> None:
        super().__init__(settings, "writer", settings.topics.request)
        self.materializer = materializer
        self.pokes = pokes  # None: the projector makes every poke, in a transaction of its own
        self.config = BatchConfig(
            limits=Limits(settings.max_value_bytes, settings.max_items_per_request, settings.max_name_bytes),
            min_version_wait_ms=settings.min_version_wait_ms,
            max_response_bytes=settings.max_response_bytes,
            max_id_bytes=settings.max_id_bytes,
            max_actor_bytes=settings.max_actor_bytes,
            trustgraph_actor=settings.signing_actor,
        )
        self.rules = ServiceRules.from_settings(settings)  # the keyring and policy, re-read while running (§14.4)
        keyring, self.policy = self.rules.current()
        self.auth = authenticator(settings, keyring)
        self.reads = ReadAnswerer(settings, materializer, self.config, self.policy)
        self.refusals = Refusals()
        self.session = Session()

    @property
    def max_records(self) -> int:  # type: ignore[override]
        return self.refusals.batch_size(self.settings.batch_max_requests)

    @property
    def position(self) -> int | None:
        """The next request offset this writer commits: it has consumed every request before it."""
        return self.session.position

    async def run(self) -> None:
        await self.reads.start()
        try:
            await super().run()
        finally:
            await self.reads.stop()

    # --- catching up --------------------------------------------------------------------------------

    async def take_over(self) -> Resume:
        """Continue above every version in the log (the view's, never lowered by a stray marker) once the
        history ends at the log's last stamped marker, from the further of the group's offset and that
        marker's (docs/design.md §6)."""
        self._use_rules(*self.rules.read_afresh())  # a standby never judges by the file it started with
        view_version = await self.materializer.wait_caught_up(_CATCH_UP_TIMEOUT_S)
        stamp = await last_stamped(self.settings)
        # The history must end at the log's last marker (else HistoryMismatch: the writer refuses); the
        # versions and the hash chain continue from there across fail-over (docs/design.md §6, §14.3).
        version, chain_head = continuation(await history_end(self.settings), stamp.marker if stamp else None,
                                           view_version)
        self.reads.clear()  # those not committed as answered are read again from the request topic
        point = furthest(await self._group_point(), stamp.point if stamp else None)
        offset = point.offset if point is not None else None
        self.session = Session(Version(version), chain_head, offset)
        self.session.pokes = self.pokes is not None and not await projector_behind(self.settings, self.pokes)
        if self.pokes is not None and self.session.pokes:  # the next poke names the notify topic's last one
            self.pokes.previous_version = await last_poke_version(self.settings, default_codec())
        metrics.WRITER_VERSION.set(self.session.version)
        fields: dict[str, Any] = {"version": self.session.version, "pokes": self.session.pokes}
        if self.auth is not None and point is not None:
            await self._remember_accepted(point.offset)
        span = parked_span(point.parked) if point is not None else None
        if point is not None and span is not None:
            # Re-read the reads the previous writer left unanswered (see eventconfig.writer.parking).
            raw = [_raw(r) for r in await self.member.read(span.first, point.offset) if span.holds(r.offset)]
            self.session.recovered = raw if span.offsets is not None else read_requests(raw)
            fields["parked_reads"] = len(self.session.recovered)
        return Resume(offset, fields)

    def _use_rules(self, keyring: Keyring | None, policy: Policy | None) -> None:
        """Judge the next requests by this keyring and policy (docs/design.md §14.4)."""
        if self.auth is not None and keyring is not None:
            self.auth.keyring = keyring
        self.policy = self.reads.policy = policy

    async def _remember_accepted(self, committed: int) -> None:
        """Re-learn the signed requests a previous writer accepted within the window, so a replay of one
        is refused after a fail-over too (docs/design.md §14.1)."""
        assert self.auth is not None
        now_ms = int(time.time() * 1000)
        start = await self.member.offset_at(now_ms - 2 * self.auth.window_ms)
        if start is None or start >= committed:
            return
        for record in await self.member.read(start, committed):
            request_id = dict(record.headers).get(ID_HEADER, b"").decode(errors="replace")
            self.auth.observe(list(record.headers), request_id, record.offset, now_ms)

    async def _group_point(self) -> ResumePoint | None:
        async with admin_client(self.settings) as admin:
            offsets = await admin.list_consumer_group_offsets(self.group_id, partitions=[self.tp])
        committed = offsets.get(self.tp)
        if committed is None or committed.offset < 0:  # nothing committed to the group
            return None
        return ResumePoint(committed.offset, committed.metadata or "")

    # --- active -------------------------------------------------------------------------------------

    def poll_ms(self) -> int | None:
        if self.session.recovered:
            return 10  # recovered reads are handled without waiting for a request
        if self.session.uncommitted:  # then commit the position reads alone moved, without waiting for a request
            return max(1, int((self.session.offset_committed + _READS_COMMIT_S - time.monotonic()) * 1000))
        return None

    def linger_ms(self) -> int:
        return self.settings.writer_linger_ms if self.session.last_batch > 1 else 0

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        session, started = self.session, time.monotonic()
        self._use_rules(*self.rules.current())
        raw = [*session.recovered, *map(_raw, records)]
        session.recovered = []
        session.last_batch = len(records)
        with self.materializer.store.snapshot() as snapshot:
            session.unapplied = [(v, changes) for v, changes in session.unapplied if v > snapshot.version]
            unapplied = ChainMap(*(changes for _, changes in reversed(session.unapplied)))
            process = functools.partial(process_batch, raw, snapshot, unapplied, session.version, self.config,
                                        now_ms=int(time.time() * 1000), refused=self.refusals.refused,
                                        chain_head=session.chain_head, auth=self.auth, policy=self.policy)
            # Decoding and handling a large batch (a 10,000-item put) is pure CPU: in a worker thread,
            # heartbeats and the pipelined commit keep running; a small one is not worth the hand-off.
            large = sum(len(r.value or b"") for r in raw) > _OFF_LOOP_BYTES
            result = await off_loop(process) if large else process()
        transaction = bool(result.log or result.history or result.responses or result.dlq)
        self.reads.add(result.reads, commits=self.commits.begun + int(transaction))
        if records:
            session.position = records[-1].offset + 1  # redone from the committed offset if a commit fails
        if not transaction:
            session.uncommitted = session.uncommitted or bool(records)
            await self._commit_reads()
            return
        # Speculatively continue from this batch; a failed commit makes the next take-over drop it all.
        if result.changes:
            session.unapplied.append((result.version, result.changes))
        session.version, session.chain_head = result.version, result.chain_head
        if not await self.commits.drain():
            return  # the previous transaction failed: this batch is redone after the next take-over
        session.offset_committed, session.uncommitted = time.monotonic(), False
        batch = _Batch([r.offset for r in records], [r.timestamp for r in records], started)
        output, next_offset, parked = self._output(result, session.position)
        pokes = len(output.get(self.settings.topics.notify, []))
        await self.commits.submit(output, next_offset, parked, batch=batch,
                                  then=functools.partial(self._committed, result, batch, pokes))

    def _output(self, result: BatchResult, next_offset: int | None) -> tuple[dict[str, list[OutRecord]], int | None,
                                                                             str]:
        """A batch's transaction: its records, and the request offset (with the reads not answered yet as
        its metadata) to commit as the group's, unless it rides on the last commit marker."""
        topics, parked = self.settings.topics, parked_metadata(self.reads.offsets())
        records = {topics.log: result.log, topics.history: result.history, topics.response: result.responses,
                   topics.dlq: result.dlq}
        if self.pokes is not None and self.session.pokes and result.log:  # they commit (or abort) with their writes
            records[topics.log], records[topics.notify] = self.pokes(result.log, result.writes)
        if result.log and next_offset is not None:  # the offset goes on the last commit marker
            records[topics.log] = stamped(records[topics.log], ResumePoint(next_offset, parked))
            next_offset = None
        return records, next_offset, parked

    def _committed(self, result: BatchResult, batch: _Batch, pokes: int) -> None:
        metrics.POKES.inc(pokes)
        self.reads.committed()
        self.refusals.committed(batch.offsets)
        _observe(result, batch)

    def abandon(self, error: EventConfigError, batch: Any) -> None:
        """The writer's one handler of a failed commit: drop the reads that waited for it (the next writer
        reads them again) and, if the broker refused its records, redo its requests one at a time."""
        self.reads.abandon()
        if isinstance(error, RecordRefused) and isinstance(batch, _Batch):
            self.refusals.failed(batch.offsets, str(error))

    async def _commit_reads(self) -> None:
        """After a batch of reads alone: now and then, once every write before it has committed,
        commit the request offset outside a transaction (the reads not answered yet as its metadata)."""
        session = self.session
        if not session.uncommitted or session.position is None or \
                time.monotonic() - session.offset_committed < _READS_COMMIT_S:
            return
        if not await self.commits.drain():
            return
        session.offset_committed, session.uncommitted = time.monotonic(), False
        try:
            await self.member.commit(session.position, parked_metadata(self.reads.offsets()))
        except KafkaError as exc:  # e.g. no longer a member: the successor answers these reads again
            log.warning("could not commit the request offset after reads", extra={"fields": {
                "offset": session.position, "error": str(exc) or type(exc).__name__}})


def _raw(record: ConsumerRecord) -> RawRequest:
    return RawRequest(record.offset, record.value, list(record.headers), record.key)


def _observe(result: BatchResult, batch: _Batch) -> None:
    now = time.time()
    metrics.BATCH_SECONDS.observe(time.monotonic() - batch.started)
    metrics.BATCH_SIZE.observe(len(result.outcomes))
    metrics.WRITER_VERSION.set(result.version)
    for operation, outcome in result.outcomes:
        metrics.REQUESTS.labels(operation, outcome).inc()
    for ts in batch.timestamps:
        metrics.REQUEST_LATENCY.observe(max(0.0, now - ts / 1000))

"""The push projector's Kafka adapter: the exclusive ``projector`` role over the log topic.

The writer writes the pokes of its own writes in their transaction and flags their commit markers
``poked`` (:mod:`eventconfig.push.writes`); the projector makes the pokes of every other version:
those of a writer with ``writer_pokes`` off, and of an older writer, e.g. the backlog left by a
deployment upgraded while its projector lagged. Versions the writer poked give nothing, and a stretch
of them moves the group's offset with a plain commit now and then. Pokes and the projector's input
offsets are committed in one transaction, so each qualifying
version yields its poke exactly once across crashes, restarts and failovers. The committed offset
is always just past a commit marker: the items of a version still being read are re-read after a
restart rather than lost. A projector group without a committed offset starts at the log's
beginning, so no write is ever left without a poke; a long backlog (e.g. a projector added to an
old deployment) comes out as a few merged pokes. With a TrustGraph topicspace set, each poke also
goes to ``<ts>.notify.config`` as TrustGraph ``ConfigPush`` JSON, in the same transaction; TrustGraph's
client reads uncommitted records, so its pushes (for every version) come only from the committed log.

Example::

    projector = PushProjector(settings)
    await projector.run()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from eventconfig import metrics
from eventconfig.codec import default_codec
from eventconfig.kafka.adapter import ConsumerRecord, KafkaError
from eventconfig.kafka.exclusive import ExclusiveRole, Resume
from eventconfig.logrecords import OutRecord
from eventconfig.push.projector import Poke, merge
from eventconfig.push.writes import LogProjection, poke_generation, poke_record
from eventconfig.settings import Settings
from eventconfig.trustgraph.wire import TrustGraphTopics, encode_push
from eventconfig.writer.poke_gap import last_poke_version

log = logging.getLogger(__name__)

_IDLE_COMMIT_S = 5.0  # a stretch of versions the writer poked commits the group's offset at most this often


class PushProjector(ExclusiveRole):
    """Consumes the log, produces the ``ConfigPush`` records the writer did not make, exactly once."""

    max_records = 5000

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "projector", settings.topics.log)
        self.codec = default_codec()
        self.items_cap = settings.poke_items_max_bytes
        self.projection = LogProjection(self.codec, self.items_cap)
        self.generation = poke_generation(self.codec, self.items_cap)
        self.offset_committed = 0.0  # monotonic time of the last commit of the group's offset
        topicspace = settings.trustgraph_topicspace
        self.trustgraph_notify = TrustGraphTopics.of(topicspace).notify if topicspace else None

    async def take_over(self) -> Resume:
        # Anything half-read is re-read from the committed offset; the last poke written is the next one's previous.
        self.projection = LogProjection(self.codec, self.items_cap, await last_poke_version(self.settings, self.codec))
        return Resume(await self.member.committed())

    def linger_ms(self) -> int:
        return self.settings.projector_linger_ms

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        pokes: list[Poke] = []  # for the notify topic: the versions whose poke the writer did not make
        pushes: list[Poke] = []  # for TrustGraph's notify topic: every version (they follow the commit, §13.3)
        next_offset = None
        for record in records:
            decoded, poke, poked = self.projection.add(record)
            if decoded is None or not decoded.is_marker:
                continue
            next_offset = record.offset + 1
            metrics.PROJECTOR_VERSION.set(decoded.version)
            if poke is not None:
                pushes.append(poke)
                if not poked:
                    pokes.append(poke)
        if next_offset is None:
            return  # no version completed in this batch; nothing to commit yet
        if self._lag(records[0].offset) > self.settings.projector_merge_lag_records:
            pokes, pushes = pokes and [merge(pokes, self.items_cap)], pushes and [merge(pushes, self.items_cap)]
        out = {self.settings.topics.notify: [poke_record(p, self.codec, self.generation) for p in pokes]}
        if self.trustgraph_notify:  # TrustGraph's consumer decodes every header: its pushes carry none
            out[self.trustgraph_notify] = [OutRecord(None, encode_push(p), []) for p in pushes]
        if any(out.values()):
            if await self.commits.commit(out, next_offset):
                metrics.POKES.inc(len(pokes))
                self.offset_committed = time.monotonic()
        elif time.monotonic() - self.offset_committed >= _IDLE_COMMIT_S:
            await self._commit_offset(next_offset)

    async def _commit_offset(self, offset: int) -> None:
        """Versions the writer poked: move the group's offset past them now and then, without a transaction
        (re-reading them after a restart makes nothing)."""
        self.offset_committed = time.monotonic()
        try:
            await self.member.commit(offset, "")
        except KafkaError as exc:  # e.g. no longer a member: the successor reads these versions again
            log.warning("could not commit the projector's offset", extra={"fields": {
                "offset": offset, "error": str(exc) or type(exc).__name__}})

    def _lag(self, first_offset: int) -> int:
        """How far behind the log's end (as of the last fetch) this batch started."""
        return max(0, self.member.end_as_fetched() - first_offset)

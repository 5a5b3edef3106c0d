"""The push projector's Kafka adapter: the exclusive ``projector`` role over the log topic.

Pokes and the projector's input offsets are committed in one transaction, so each qualifying
version yields its poke exactly once across crashes, restarts and failovers. The committed offset
is always just past a commit marker: the items of a version still being read are re-read after a
restart rather than lost. A projector group without a committed offset starts at the log's
beginning, so no write is ever left without a poke; a long backlog (e.g. a projector added to an
old deployment) comes out as a few merged pokes. On activation it reads the last poke of the notify
topic, whose version the next poke names as ``previous_version``. With a TrustGraph topicspace set, each poke also
goes to ``<ts>.notify.config`` as TrustGraph ``ConfigPush`` JSON, in the same transaction.

Example::

    projector = PushProjector(settings)
    await projector.run()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eventconfig import metrics
from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.adapter import ConsumerRecord, TopicPartition
from eventconfig.kafka.exclusive import ExclusiveRole, Resume
from eventconfig.kafka.reading import tail_records
from eventconfig.logrecords import OutRecord, decode_record
from eventconfig.model import VERSION_HEADER
from eventconfig.push.projector import Poke, Projector, merge
from eventconfig.settings import Settings
from eventconfig.trustgraph.wire import TrustGraphTopics, encode_push

log = logging.getLogger(__name__)


class PushProjector(ExclusiveRole):
    """Consumes the log, produces ``ConfigPush`` records to the notify topic, exactly once."""

    max_records = 5000

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "projector", settings.topics.log)
        self.codec = default_codec()
        self.items_cap = settings.poke_items_max_bytes
        self.projector = Projector(self.items_cap)
        # Without items, pokes are written in the generation subscribers from before items read.
        self.poke_writer = self.codec.registry.generation("v0", "ConfigPush") if self.items_cap == 0 else None
        self.skipped = 0
        topicspace = settings.trustgraph_topicspace
        self.trustgraph_notify = TrustGraphTopics.of(topicspace).notify if topicspace else None

    async def take_over(self) -> Resume:
        # Anything half-read is re-read from the committed offset; the last poke written is the next one's previous.
        self.projector = Projector(self.items_cap, await self._last_poke_version())
        return Resume(await self.member.committed())

    async def _last_poke_version(self) -> int | None:
        """The version of the notify topic's last poke; 0 when it has none, None when it cannot be read."""
        records = await tail_records(self.settings, TopicPartition(self.settings.topics.notify, 0), lambda r: True)
        for record in reversed(records):
            try:
                return int(self.codec.decode("ConfigPush", record.value or b"")["version"])
            except CodecError:
                continue
        return None if records else 0

    def linger_ms(self) -> int:
        return self.settings.projector_linger_ms

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        pokes: list[Poke] = []
        next_offset = None
        for record in records:
            try:
                decoded = decode_record(record.key, record.value, record.headers, self.codec)
            except CodecError as exc:
                self.skipped += 1
                log.warning("skipping an undecodable log record", extra={"fields": {"offset": record.offset,
                                                                                    "error": str(exc)}})
                continue
            poke = self.projector.add(decoded)
            if decoded.is_marker:
                next_offset = record.offset + 1
                metrics.PROJECTOR_VERSION.set(decoded.version)
            if poke is not None:
                pokes.append(poke)
        if next_offset is None:
            return  # no version completed in this batch; nothing to commit yet
        if len(pokes) > 1 and self._lag(records[0].offset) > self.settings.projector_merge_lag_records:
            pokes = [merge(pokes, self.items_cap)]
        out = {self.settings.topics.notify: [OutRecord(None, self.codec.encode("ConfigPush", p, writer=self.poke_writer),
                                                       [(VERSION_HEADER, str(p["version"]).encode())]) for p in pokes]}
        if self.trustgraph_notify:  # TrustGraph's consumer decodes every header: its pushes carry none
            out[self.trustgraph_notify] = [OutRecord(None, encode_push(p), []) for p in pokes]
        if await self.commits.commit(out, next_offset):
            metrics.POKES.inc(len(pokes))

    def _lag(self, first_offset: int) -> int:
        """How far behind the log's end (as of the last fetch) this batch started."""
        return max(0, self.member.end_as_fetched() - first_offset)

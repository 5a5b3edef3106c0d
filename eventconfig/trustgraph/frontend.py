"""The TrustGraph front end's Kafka adapters: two exclusive roles, each on its own transactional id.

* :class:`RequestForwarder` reads ``<ts>.request.config`` and forwards each TrustGraph request into
  eventconfig's request topic, the forwarded records and its input offset in one transaction, so
  each request reaches the writer exactly once. A forwarder group without a committed offset starts
  with the requests of the last minute (TrustGraph's longest config timeout): someone may still wait
  for those, for instance a processor that started with eventconfig; nobody waits for older ones.
* :class:`ResponseTranslator` reads partition 0 of eventconfig's response topic (``read_committed``),
  where the forwarder asks for the answers (``reply-partition``), and turns every answer to a
  forwarded request into TrustGraph JSON on ``<ts>.response.config``. TrustGraph's
  client reads uncommitted records, so its answer must not be produced inside the writer's
  transaction; produced here, it exists only once the write it reports has committed, and a
  restarted front end still answers requests that were in flight. It passes on only the first
  answer to an id within 5 minutes (:mod:`eventconfig.trustgraph.answered`), re-learnt at take-over.

Example::

    front = TrustGraphFrontEnd(settings, response_limit)
    tasks = [asyncio.create_task(role.run()) for role in front.roles]    # ConfigService does this
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from eventconfig.client.wire import header_value
from eventconfig.codec import default_codec
from eventconfig.errors import CodecError
from eventconfig.kafka.adapter import ConsumerRecord
from eventconfig.kafka.exclusive import ExclusiveRole, Resume
from eventconfig.kafka.transactions import TransactionFailed
from eventconfig.logrecords import OutRecord
from eventconfig.model import ID_HEADER
from eventconfig.settings import Settings
from eventconfig.signing import settings_signer
from eventconfig.trustgraph.answered import AnsweredIds
from eventconfig.trustgraph.forwarding import REPLY_PARTITION, forward_batch
from eventconfig.trustgraph.wire import TrustGraphTopics, encode_response, parse_forward_id
from eventconfig.writer.batch import RawRequest

log = logging.getLogger(__name__)

_FIRST_START_LOOKBACK_MS = 60_000  # TrustGraph processors wait 60 s for a config answer (--config-timeout)
_IDLE_COMMIT_RECORDS = 1000  # commit the translator's offset at least this often when nothing is ours
_DEDUP_WINDOW_MS = 300_000  # one answer per TrustGraph id within this (5x TrustGraph's config timeout)


class TrustGraphFrontEnd:
    """The two roles that serve one TrustGraph topicspace."""

    def __init__(self, settings: Settings, response_limit: int) -> None:
        topicspace = settings.trustgraph_topicspace
        topics = TrustGraphTopics.of(topicspace)
        self.forwarder = RequestForwarder(settings, topicspace, topics)
        self.translator = ResponseTranslator(settings, topicspace, topics, response_limit)
        self.roles: list[ExclusiveRole] = [self.forwarder, self.translator]


class RequestForwarder(ExclusiveRole):
    """``<ts>.request.config`` -> eventconfig's request topic, exactly once."""

    def __init__(self, settings: Settings, topicspace: str, topics: TrustGraphTopics) -> None:
        super().__init__(settings, f"trustgraph.{topicspace}.forwarder", topics.request)
        self.topicspace = topicspace
        self.max_request_bytes = settings.max_response_bytes
        self.codec = default_codec()
        self.signer = settings_signer(settings)  # signs as the front end's identity (docs/design.md §14.1)

    async def take_over(self) -> Resume:
        committed = await self.member.committed()
        if committed is not None:
            return Resume(committed)
        since = int(time.time() * 1000) - _FIRST_START_LOOKBACK_MS
        found = await self.member.offset_at(since)
        start = found if found is not None else await self.member.end()
        if not await self.commits.commit({}, start):
            raise TransactionFailed(f"could not record the starting offset of {self.tp.topic}")
        return Resume(start, {"first_start_at": start})

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        raw = [RawRequest(r.offset, r.value, list(r.headers), r.key) for r in records]
        out = forward_batch(raw, self.topicspace, self.tp.topic, self.max_request_bytes, self.codec,
                            max_id_bytes=self.settings.max_id_bytes, signer=self.signer,
                            now_ms=int(time.time() * 1000))
        topics = self.settings.topics
        committed = await self.commits.commit({topics.request: out.requests, topics.response: out.responses,
                                       topics.dlq: out.dlq}, records[-1].offset + 1)
        if committed and out.dlq:
            log.warning("dead-lettered TrustGraph requests", extra={"fields": {"count": len(out.dlq)}})


class ResponseTranslator(ExclusiveRole):
    """eventconfig's response topic -> ``<ts>.response.config`` for forwarded requests, exactly once."""

    max_records = 2000

    def __init__(self, settings: Settings, topicspace: str, topics: TrustGraphTopics, response_limit: int) -> None:
        super().__init__(settings, f"trustgraph.{topicspace}.translator", settings.topics.response,
                         partition=REPLY_PARTITION)
        self.topicspace = topicspace
        self.target = topics.response
        self.response_limit = response_limit
        self.codec = default_codec()
        self._uncommitted = 0
        self.answered = AnsweredIds(_DEDUP_WINDOW_MS)

    async def take_over(self) -> Resume:
        """Resume from the group's offset, re-learning the ids answered within the window before it."""
        self._uncommitted = 0
        self.answered = AnsweredIds(_DEDUP_WINDOW_MS)
        committed = await self.member.committed()
        if committed:
            start = await self.member.offset_at(int(time.time() * 1000) - 2 * _DEDUP_WINDOW_MS)
            if start is not None and start < committed:
                for record in await self.member.read(start, committed):
                    self._forwarded(record)
        return Resume(committed, {"answers_to": self.target, "recent_ids": len(self.answered)})

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        out = [answer for answer in map(self._translate, records) if answer is not None]
        self._uncommitted += len(records)
        if not out and self._uncommitted < _IDLE_COMMIT_RECORDS:
            return  # nothing of ours: re-reading these after a restart produces nothing either
        if await self.commits.commit({self.target: out}, records[-1].offset + 1):
            self._uncommitted = 0

    def _forwarded(self, record: ConsumerRecord) -> tuple[str, bool] | None:
        """(TrustGraph id, whether a write) of a response the translator passes on: to a forwarded request,
        and the first to its id within the window (a read answered again after a writer's fail-over is not)."""
        forwarded = parse_forward_id(self.topicspace, header_value(record.headers, ID_HEADER))
        if forwarded is None or not self.answered.first(forwarded[0], record.timestamp):
            return None
        return forwarded

    def _translate(self, record: ConsumerRecord) -> OutRecord | None:
        forwarded = self._forwarded(record)
        if forwarded is None:
            return None
        trustgraph_id, write = forwarded
        try:
            response = self.codec.decode("ConfigResponse", record.value)
        except CodecError as exc:
            log.warning("cannot translate an undecodable response", extra={"fields": {"offset": record.offset,
                                                                                   "error": str(exc)}})
            return None
        body = encode_response(response, write=write, max_bytes=self.response_limit)
        return OutRecord(None, body, [(ID_HEADER, trustgraph_id.encode())])

"""One group-commit batch, pure: raw request records in, everything the transaction writes out.

The writer's Kafka adapter consumes a batch of request records and hands them here with a view
reader, the committed-but-not-yet-applied changes and the current version. Back come the log,
history, response and DLQ records for one transaction, the changes to remember until the view
applies them, and the reads. Writes are handled in order, each on top of the writes before it.

Reads are not answered in the transaction: each becomes a :class:`Waiting` read that
:func:`answer_reads` answers from the view once the writer's transactions holding the requests
before it have committed and the view holds the version of every write before it in the request
topic (docs/design.md §6; why that is linearizable: :mod:`eventconfig.writer.reads`).

Example::

    result = process_batch(records, reader, unapplied={}, version=7, config=BatchConfig(), now_ms=now)
    # produce result.log / .history / .responses / .dlq in one transaction, then commit offsets
    answered, later = answer_reads(result.reads, view_snapshot, committed_transactions, config, now)
"""

from __future__ import annotations

import logging
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventconfig import model
from eventconfig.codec import Codec, default_codec
from eventconfig.deadletter import DLQ_FIELD_BYTES, dead_letter, reasons
from eventconfig.errors import (BadRequest, CodecError, ConfigError, ReadTimeout, RequestError, RequestTimeout,
                                TooLarge, Unauthenticated, ViewError)
from eventconfig.logrecords import Headers, OutRecord
from eventconfig.model import Entry, ItemKey, Version
from eventconfig.view.reader import ScanOnce, ViewReader
from eventconfig.writer.auth import Authenticator, Identity
from eventconfig.writer.policy import Policy
from eventconfig.writer.handler import Context, Limits, Outcome, Request, error_response, handle_request, needs_version
from eventconfig.writer.overlay import Overlay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawRequest:
    """A consumed request record, as the adapter got it from Kafka."""

    offset: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    key: bytes | None = None


@dataclass(frozen=True)
class Waiting:
    """A consumed read, answered from the view once ``commits`` of the writer's transactions have
    committed and the view holds ``version``, or with ``timeout`` at its deadline. On the read topic
    (:mod:`eventconfig.writer.read_server`) ``commits`` is instead the log offset the view must reach."""

    request: Request
    request_id: str
    identity: Identity
    deadline_ms: int
    dialect: bytes | None = None  # the ConfigResponse schema to answer with (older clients)
    offset: int = -1  # of its request record: committed as parked, so a fail-over cannot lose it
    partition: int | None = None  # the response partition it asked for (``reply-partition``)
    version: int = 0  # its min_version, or the version of the last write before it, the higher
    commits: int = 0  # the writer's transactions (of its activation) holding the requests before it

    def ready(self, version: int, committed: int) -> bool:
        """Whether a view at ``version`` may answer this read once ``committed`` transactions have."""
        return committed >= self.commits and version >= self.version


@dataclass(frozen=True)
class BatchConfig:
    """Limits of one batch. Every record value it produces is at most ``max_response_bytes``; keys and
    headers are bounded by ``max_id_bytes`` (responses) or :data:`~eventconfig.deadletter.DLQ_EXTRA_BYTES` (DLQ), well inside
    the room the settings keep beside the value (``RECORD_OVERHEAD_BYTES``)."""

    limits: Limits = Limits()
    min_version_wait_ms: int = 5_000
    max_response_bytes: int = 10 * 1024 * 1024 - 64 * 1024
    max_id_bytes: int = 256
    max_actor_bytes: int = 256
    # With a keyring: the only actor whose requests may carry a TrustGraph id (docs/design.md §13.4).
    trustgraph_actor: str = ""


@dataclass
class BatchResult:
    log: list[OutRecord] = field(default_factory=list)
    history: list[OutRecord] = field(default_factory=list)
    responses: list[OutRecord] = field(default_factory=list)
    dlq: list[OutRecord] = field(default_factory=list)
    changes: dict[ItemKey, Entry | None] = field(default_factory=dict)
    writes: list[tuple[int, dict[ItemKey, Entry | None]]] = field(default_factory=list)  # (version, changes), in order
    version: Version = Version(0)
    chain_head: str = ""  # the hash of the last Mutation: the history chain continues from it
    reads: list[Waiting] = field(default_factory=list)  # answered later, from the view (answer_reads)
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (operation, "ok" | error type)


def process_batch(records: Sequence[RawRequest], base: ViewReader, unapplied: Mapping[ItemKey, Entry | None],
                  version: Version, config: BatchConfig, now_ms: int,
                  codec: Codec | None = None, refused: Mapping[int, str | None] | None = None,
                  chain_head: str = "", auth: Authenticator | None = None,
                  policy: Policy | None = None, reads_only: bool = False) -> BatchResult:
    """Handle ``records`` as one atomic unit of output; their reads come back in ``reads``.

    ``unapplied`` holds the item changes of this writer's earlier transactions (committed or in flight)
    that ``base``, a snapshot of the view, does not hold yet: they are read through (docs/design.md §6).
    ``refused`` maps offsets of requests whose output the broker refused (``offset -> reason``): they
    are not handled again but dead-lettered as a minimal record, so they cannot block the topic
    (reason None: even that record was refused, so the request is only skipped). ``chain_head`` is the
    hash of the last Mutation written, which the first write of the batch chains to (§14.3). With
    ``auth``, every request must be signed by an actor of its keyring (§14.1); with ``policy``, its
    actor must be allowed what it asks (§14.2). With ``reads_only`` (the read topic), a write is
    answered ``bad-request`` and not done.
    """
    batch = _Batch(base, unapplied, version, config, now_ms, codec or default_codec(), auth, policy)
    batch.reads_only = reads_only
    if auth is not None:
        auth.forget_expired(now_ms)
    batch.result.chain_head = chain_head
    for record in records:
        if refused and record.offset in refused:
            batch.refuse(record, refused[record.offset])
        else:
            batch.take(record)
    return batch.result


def answer_reads(reads: Sequence[Waiting], view: ViewReader, committed: int, config: BatchConfig, now_ms: int,
                 codec: Codec | None = None, policy: Policy | None = None,
                 log_offsets: bool = False) -> tuple[BatchResult, list[Waiting]]:
    """Answer from ``view`` the reads it may answer once ``committed`` of the writer's transactions have
    committed (each checked against ``policy``, §14.2), and with ``timeout`` those past their deadline;
    the rest come back to wait longer. ``log_offsets``: ``committed`` and each read's ``commits`` are log
    offsets (the read topic: the view's position and the log's end the read waits for)."""
    batch = _Batch(view, {}, Version(view.version), config, now_ms, codec or default_codec(), policy=policy)
    later = []
    for item in reads:
        if item.ready(view.version, committed):
            batch._handle(item.request, item.request_id, item.identity, item.dialect, item.partition)
        elif now_ms >= item.deadline_ms:
            why = _late(item, view.version, committed, config, log_offsets)
            batch._respond(item.request_id, error_response(ReadTimeout(why)),
                           item.request["operation"], item.dialect, item.partition)
        else:
            later.append(item)
    return batch.result, later


def _late(item: Waiting, version: int, committed: int, config: BatchConfig, log_offsets: bool) -> str:
    """Why ``item`` is answered ``timeout``."""
    limit = f"by the read's deadline (at most {config.min_version_wait_ms} ms"
    if version < item.version:
        return f"version {item.version} not reached {limit}; current {version})"
    if log_offsets:
        return f"the view did not reach the log's end as of the read {limit}; offset {committed} of {item.commits})"
    return f"the writes before it did not commit {limit}; {committed} of {item.commits} transactions did)"


def read_requests(records: Sequence[RawRequest], codec: Codec | None = None) -> list[RawRequest]:
    """The records that are reads: the ones a previous writer may have left unanswered."""
    codec = codec or default_codec()
    kept = []
    for record in records:
        try:
            request = codec.decode("ConfigRequest", record.value) if record.value is not None else None
        except CodecError:
            continue
        if request is not None and request.get("operation") in model.READ_OPERATIONS:
            kept.append(record)
    return kept


class _Batch:
    def __init__(self, base: ViewReader, unapplied: Mapping[ItemKey, Entry | None], version: Version,
                 config: BatchConfig, now_ms: int, codec: Codec, auth: Authenticator | None = None,
                 policy: Policy | None = None) -> None:
        self.base = ScanOnce(base)  # identical reads in one batch scan the view once (a fleet's refetch)
        self.auth = auth
        self.policy = policy
        self.config = config
        self.now_ms = now_ms
        self.codec = codec
        self.result = BatchResult(version=version)
        self.reads_only = False  # the read topic: writes are refused
        # This batch's changes shadow the committed-but-unapplied ones; both shadow the view.
        below = unapplied.maps if isinstance(unapplied, ChainMap) else [unapplied]
        self.changes: ChainMap[ItemKey, Entry | None] = ChainMap(self.result.changes, *below)

    def reader(self) -> ViewReader:
        return Overlay(self.base, self.changes, self.result.version)

    def take(self, record: RawRequest) -> None:
        request_id = self._request_id(record)
        if request_id is None:
            return
        headers = dict(record.headers)
        try:
            partition = reply_partition(headers.get(model.REPLY_PARTITION_HEADER))
            unroutable = None
        except BadRequest as exc:  # answered where a request without the header is (docs/design.md §4.3)
            partition, unroutable = None, exc
        try:
            if record.value is None:
                raise CodecError("request record has no value")
            request, writer = self.codec.decode_with_writer("ConfigRequest", record.value)
        except CodecError as exc:
            self._dead_letter(record, type(exc).__name__, str(exc))
            if request_id and not self._reserved(request_id):
                self._respond(request_id, error_response(ConfigError(f"undecodable request: {exc}")), "?",
                              partition=partition)
            return
        if not request_id:
            self._dead_letter(record, "MissingId", "request has no 'id' header; no response can be sent")
            return
        dialect = self.codec.registry.counterpart(writer, "ConfigResponse")  # answer in kind
        if unroutable is not None:
            if not self._reserved(request_id):
                self._respond(request_id, error_response(unroutable), request["operation"], dialect)
            return
        try:
            identity = self._identify(record, request_id, headers)
            if self._reserved(request_id) and identity.actor != self.config.trustgraph_actor:
                raise Unauthenticated(f"ids starting {model.TRUSTGRAPH_ID_PREFIX!r} are reserved to the TrustGraph "
                                      f"front end's actor {self.config.trustgraph_actor[:64]!r}")
        except Unauthenticated as exc:
            self._dead_letter(record, "Unauthenticated", exc.message)
            if not self._reserved(request_id):  # an answer to a TrustGraph id reaches TrustGraph as its answer
                self._respond(request_id, error_response(exc), request["operation"], dialect, partition)
            return
        try:
            deadline = request_deadline(headers.get(model.DEADLINE_HEADER))
        except BadRequest as exc:
            self._respond(request_id, error_response(exc), request["operation"], dialect, partition)
            return
        if deadline is not None and self.now_ms >= deadline:
            expired = RequestTimeout(f"the request's deadline passed {self.now_ms - deadline} ms before the writer "
                                     "got to it; nothing was done")
            self._respond(request_id, error_response(expired), request["operation"], dialect, partition)
            return
        actor_bytes = len(headers.get(model.ACTOR_HEADER) or b"")
        if actor_bytes > self.config.max_actor_bytes:  # the actor goes into the history record
            error = TooLarge(f"the 'actor' header is {actor_bytes} bytes; the limit is {self.config.max_actor_bytes}")
            self._respond(request_id, error_response(error), request["operation"], dialect, partition)
            return
        if request["operation"] in model.READ_OPERATIONS:
            # Answered from the view once it holds every write before this read (docs/design.md §6).
            wait_until = self.now_ms + self.config.min_version_wait_ms
            deadline = wait_until if deadline is None else min(deadline, wait_until)
            version = max(needs_version(request) or 0, self.result.version)
            self.result.reads.append(Waiting(request, request_id, identity, deadline, dialect, record.offset,
                                             partition, version))
            return
        if self.reads_only:
            wrong = BadRequest(f"{request['operation']!r} is a write; the read topic takes reads only: send it to the "
                               "request topic")
            self._respond(request_id, error_response(wrong), request["operation"], dialect, partition)
            return
        self._handle(request, request_id, identity, dialect, partition)

    def _reserved(self, request_id: str) -> bool:
        """Whether only a request verified as the TrustGraph front end's may be answered under this id: with
        a keyring, the translator passes every answer to a ``tg:`` id on to TrustGraph (docs/design.md §13.4)."""
        return self.auth is not None and request_id.startswith(model.TRUSTGRAPH_ID_PREFIX)

    def _identify(self, record: RawRequest, request_id: str, headers: Mapping[str, bytes]) -> Identity:
        """Who sent the request: verified with a keyring (Unauthenticated if not), else as claimed."""
        if self.auth is None:
            return Identity(_text(headers.get(model.ACTOR_HEADER)) or None)
        assert record.value is not None
        return self.auth.verify(record.value, record.headers, request_id, record.offset, self.now_ms)

    def _request_id(self, record: RawRequest) -> str | None:
        """The id to answer with ("" when there is none), or None when the id itself is unusable or a
        header of the contract is repeated: then the request is dead-lettered unanswered (docs/design.md
        §4.3), since its response could not be produced or routed, or its headers read two ways."""
        repeated = model.repeated_header(record.headers)
        if repeated is not None:
            self._dead_letter(record, *repeated_header_refusal(record.headers, repeated))
            return None
        ids = [raw for name, raw in record.headers if name == model.ID_HEADER]
        problem = _id_problem(ids[0] if ids else None, self.config.max_id_bytes)
        if problem:
            self._dead_letter(record, "BadId", f"{problem}; no response can be sent")
            return None
        return _text(ids[0] if ids else None)

    def _handle(self, request: Request, request_id: str, identity: Identity, dialect: bytes | None,
                partition: int | None = None) -> None:
        operation = request["operation"]
        ctx = Context(self.reader(), self.config.limits, self.result.version, self.now_ms, request_id,
                      identity.actor, identity.verified, prev_hash=self.result.chain_head)
        try:
            if self.policy is not None:
                self.policy.check(identity, request)
            outcome = handle_request(request, ctx)
            if outcome.version is not None:
                self._commit(outcome)
        except RequestError as exc:
            outcome = Outcome(error_response(exc))
        except ViewError:
            raise  # the writer cannot read its own state: stop loudly rather than answer wrongly
        except Exception as exc:  # noqa: BLE001 - a bug in one request must not stop the service
            log.exception("request %s (%s) failed unexpectedly", request_id, operation)
            outcome = Outcome(error_response(ConfigError(str(exc) or type(exc).__name__)))
        self._respond(request_id, outcome.response, operation, dialect, partition)

    def _commit(self, outcome: Outcome) -> None:
        """Add a successful write to the batch, unless its history record would be too large to
        produce (raises TooLarge, and nothing of the write is kept)."""
        assert outcome.mutation is not None and outcome.version is not None
        mutation = self.codec.encode("Mutation", outcome.mutation)
        if len(mutation) > self.config.max_response_bytes:
            raise TooLarge(f"the write's history record (values and previous values) would be {len(mutation)} "
                           f"bytes, over the {self.config.max_response_bytes}-byte limit; split the request")
        self.result.log.extend(outcome.log_records)
        self.result.history.append(OutRecord(str(outcome.version).encode(), mutation, []))
        self.result.changes.update(outcome.changes)
        self.result.writes.append((outcome.version, outcome.changes))
        self.result.version = outcome.version
        self.result.chain_head = outcome.mutation["hash"]

    def _respond(self, request_id: str, response: dict[str, Any], operation: str,
                 dialect: bytes | None = None, partition: int | None = None) -> None:
        value = self.codec.encode("ConfigResponse", response, writer=dialect)
        if len(value) > self.config.max_response_bytes:
            error = TooLarge(f"the response is {len(value)} bytes, over the {self.config.max_response_bytes}-byte "
                             "limit; narrow the request (e.g. getkeys-all-ws, then get)")
            response = error_response(error)
            value = self.codec.encode("ConfigResponse", response, writer=dialect)
        outcome = response["error"]["type"] if response["error"] else "ok"
        self.result.outcomes.append((operation, outcome))
        self.result.responses.append(OutRecord(request_id.encode(), value, [(model.ID_HEADER, request_id.encode())],
                                               partition))

    def refuse(self, record: RawRequest, reason: str | None) -> None:
        """Dead-letter a request whose output the broker refused (:func:`unproducible`), or skip it."""
        if reason is None:
            self.result.outcomes.append(("?", "skipped"))
            return
        self.result.dlq.append(unproducible(record, reason))
        self.result.outcomes.append(("?", "dlq"))

    def _dead_letter(self, record: RawRequest, error_type: str, reason: str) -> None:
        """A bounded copy of ``record`` (see :mod:`eventconfig.deadletter`)."""
        self.result.dlq.append(dead_letter(record.key, record.value, record.headers, offset=record.offset,
                                           error_type=error_type, reason=reason,
                                           max_value_bytes=self.config.max_response_bytes))
        self.result.outcomes.append(("?", "dlq"))


def unproducible(record: RawRequest, reason: str) -> OutRecord:
    """The dead letter of a request whose output the broker refused: only its offset, the reason and
    its id (cut short), since its own bytes are what may not be producible."""
    request_id = next((raw for name, raw in record.headers if name == model.ID_HEADER), None)
    headers: Headers = [] if request_id is None else [(model.ID_HEADER, request_id[:DLQ_FIELD_BYTES])]
    return OutRecord(None, None, [*headers, *reasons(record.offset, "Unproducible", reason)])


def repeated_header_refusal(headers: Sequence[tuple[str, bytes]], name: str) -> tuple[str, str]:
    """The dead letter's ``error-type`` and ``error`` for a request that repeats header ``name``:
    ``DuplicateId`` for ``id`` (clients differ in which one they read: answering either could
    misroute), ``DuplicateHeader`` for the others (the signature covers the first, a dict keeps the last)."""
    count = sum(1 for n, _ in headers if n == name)
    return ("DuplicateId" if name == model.ID_HEADER else "DuplicateHeader",
            f"request has {count} {name!r} headers; at most one is allowed")


def _id_problem(raw: bytes | None, max_bytes: int) -> str | None:
    """Why an ``id`` header cannot be echoed in a response (too long, not UTF-8), or None."""
    if raw is None:
        return None
    if len(raw) > max_bytes:
        return f"the 'id' header is {len(raw)} bytes, over the {max_bytes}-byte limit"
    try:
        raw.decode()
    except UnicodeDecodeError:
        return "the 'id' header is not UTF-8"
    return None


def request_deadline(raw: bytes | None) -> int | None:
    """The ``deadline`` header as epoch milliseconds, None without one; BadRequest if malformed."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadRequest(f"the {model.DEADLINE_HEADER!r} header must be epoch milliseconds as decimal digits, "
                         f"not {text[:40]!r}")
    return int(text)


# Kafka numbers partitions with a signed 32-bit int; nine digits stay below its maximum.
_MAX_PARTITION_DIGITS = 9


def reply_partition(raw: bytes | None) -> int | None:
    """The ``reply-partition`` header as a partition number, None without one; BadRequest if malformed.
    Whether the topic has that partition is only known when producing (docs/design.md §4.3)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_PARTITION_DIGITS:
        raise BadRequest(f"the {model.REPLY_PARTITION_HEADER!r} header must be a partition number as decimal "
                         f"digits (at most {_MAX_PARTITION_DIGITS}), not {text[:40]!r}")
    return int(text)


def _text(raw: bytes | None) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", errors="replace")

"""The one module through which the roles reach aiokafka (tests/integration/test_kafka_adapter.py pins it).

Everything the exclusive roles (writer, projector, TrustGraph forwarder and translator) need from the
Kafka client lives here, behind a few narrow names: the group member that holds or waits for the
role's input partition (:class:`GroupMember`, with the group's assignor that keeps the partition with
the member holding the role), the producers (:func:`transactional_producer`, :func:`idempotent_producer`)
and the steps of a transaction (:func:`fence`, :func:`routes`, :func:`send`, :func:`abortable`,
:func:`forget_failure`). The client hubs take three things from here too: their long-polling consumer
fetches its partitions together (:func:`fetch_partitions_together`) and again as soon as a fetch ends
(:func:`fetch_again_at_once`), and they refresh their metadata when a request stalls
(:func:`refresh_from_any_broker`). Every long-lived consumer (the hubs', the view's, the groups')
does the same while a fetch stalls (:func:`refresh_when_a_fetch_stalls`; both through
:func:`follow_promptly`). ``topics create`` waits
here until every broker lists the new topics (:func:`topics_seen_by_every_broker`). The aiokafka
details that have no public API (the transaction manager's state, the waiters it leaves failed, a
forced metadata refresh, the group generation, the fetcher's prefetch back-off, in-flight brokers and
fetch tasks, the client's tracked topics, the admin's client) are confined to this module.

Example::

    member = GroupMember(settings, "g", TopicPartition("t", 0), on_lost=step_down,
                         held_since=lambda: None, reading=lambda: False)
    await member.start()
    records = await member.fetch(timeout_ms=100, max_records=500)
"""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from aiokafka.errors import (CorruptRecordException, InvalidMessageError, InvalidTimestampError, KafkaError,
                             MessageSizeTooLargeError, OutOfOrderSequenceNumber, ProducerFenced,
                             RecordListTooLargeError, RecordTooLargeError, UnknownProducerId)
from aiokafka.producer.transaction_manager import TransactionState
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import OffsetAndMetadata

from eventconfig.kafka.reading import committed_consumer, end_offset, read_to_end
from eventconfig.kafka.records import OutRecord
from eventconfig.settings import Settings

__all__ = ["OUT_OF_STEP", "REFUSALS", "AIOKafkaProducer", "ConsumerRecord", "GroupMember", "KafkaError",
           "ProducerFenced", "TopicPartition", "abortable", "fence", "fetch_again_at_once",
           "fetch_partitions_together", "follow_promptly", "forget_failure", "idempotent_producer",
           "refresh_from_any_broker",
           "refresh_metadata", "refresh_when_a_fetch_stalls", "routes", "send", "topics_seen_by_every_broker",
           "transactional_producer"]

# Produce errors that retrying cannot cure: the records themselves are unacceptable to the broker.
REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, CorruptRecordException,
            InvalidMessageError, InvalidTimestampError)

# Produce errors of an idempotent producer whose sequence numbers the broker no longer accepts: only a
# new producer id cures them.
OUT_OF_STEP = (OutOfOrderSequenceNumber, UnknownProducerId)

# aiokafka's transaction states from which abort_transaction() is a valid transition.
_ABORTABLE = frozenset({TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR})

_IDLE_POLL_MS = 200  # how often a member without the role polls (keeps its membership alive)

# How long fetched records may wait to be taken before aiokafka fetches the consumer's other partitions
# without them: longer than any turn of a live event loop (see fetch_partitions_together).
_TAKEN_WITHIN_S = 3600.0


# How much longer than its long poll a fetch may be out before its consumer looks for a new leader
# (see refresh_when_a_fetch_stalls).
_STALL_GRACE_S = 1.0

# --- consumers ----------------------------------------------------------------------------------

def fetch_partitions_together(consumer: AIOKafkaConsumer) -> None:
    """Make a started ``consumer`` fetch its partitions together, never some without the others.

    aiokafka leaves out of its next fetch a partition whose fetched records the caller has not taken
    within 100 ms (its private prefetch back-off), and the broker holds that fetch for the whole long
    poll: a record arriving meanwhile on the left-out partition waits until the poll ends. For a
    client's consumer (answers and pokes, ``client_fetch_wait_ms`` 5 s) one late turn of a busy event
    loop thus delayed the next poke or answer by up to 5 s. After this call the next fetch waits until
    the caller has taken what was fetched, which is what a caller that always takes everything wants."""
    consumer._fetcher._prefetch_backoff = _TAKEN_WITHIN_S


def follow_promptly(consumer: AIOKafkaConsumer, settings: Settings) -> None:
    """What every long-lived consumer (the hubs', the view's, the groups' members') needs on top of
    aiokafka: its next fetch goes out as soon as one ends (:func:`fetch_again_at_once`), and a fetch
    stalled on a frozen leader refreshes the metadata (:func:`refresh_when_a_fetch_stalls`)."""
    fetch_again_at_once(consumer)
    refresh_when_a_fetch_stalls(consumer, _STALL_GRACE_S, settings.request_timeout_ms / 1000)


def fetch_again_at_once(consumer: AIOKafkaConsumer) -> None:
    """Make a started ``consumer`` send its next fetch as soon as one ends, whatever else wakes it.

    aiokafka marks a broker free for the next fetch in a done-callback of the fetch's task, which runs
    one turn of the event loop after the task ends. When the fetch loop wakes in that turn for another
    reason (its ``consumer_timeout_ms`` timer, or records taken), it sees the fetch done but its broker
    still busy, sends nothing, and sleeps until its timer fires again: a whole long poll when that
    timer is as long as the poll, which is how a subscriber missed the first pokes after an idle spell
    by 3–5 s (with the default 200 ms timer, a request waits up to that long). Here the fetch frees its
    broker itself, before its task ends, and a cancelled fetch ends quietly (aiokafka privates). Used
    by every long-lived consumer: the hubs', the view's and the groups' members'."""
    fetcher = consumer._fetcher
    for name in ("_proc_fetch_request", "_update_fetch_positions"):
        setattr(fetcher, name, _freeing_its_broker(fetcher, getattr(fetcher, name)))


def _freeing_its_broker(fetcher: Any, work: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(assignment: Any, node_id: int, *args: Any) -> Any:
        try:
            return await work(assignment, node_id, *args)
        except asyncio.CancelledError:
            # Stopping the consumer cancels the fetch and then awaits it. aiokafka expects the
            # cancellation to end the fetch quietly, but in its pause after a failed fetch it
            # escaped, and the consumer's stop raised CancelledError (a hub was left open in CI).
            return False
        finally:
            fetcher._in_flight.discard(node_id)
    return run


def refresh_when_a_fetch_stalls(consumer: AIOKafkaConsumer, grace_s: float, timeout_s: float) -> None:
    """Make a started ``consumer`` refresh its metadata from every broker at once
    (:func:`refresh_from_any_broker`, each ``timeout_s`` at most) once a fetch is out ``grace_s``
    longer than its long poll, and every ``grace_s`` after that until the fetch ends.

    A frozen partition leader answers nothing. aiokafka waits out its request timeout, then retries the
    same broker, each try another connection timeout, and refreshes its metadata from brokers in random
    order, the frozen one among them: in the chaos run the service's consumers kept fetching from a
    frozen leader for the whole 15 s freeze, though Kafka had moved the leadership about 5 s in, and
    no request was answered until it thawed. The refresh wakes the fetch loop, which then fetches from
    the new leader while the stalled fetch waits out its timeout. The fetch is wrapped (aiokafka
    privates)."""
    fetcher = consumer._fetcher
    work = fetcher._proc_fetch_request
    stall_s = fetcher._fetch_max_wait_ms / 1000 + grace_s
    refreshing: list[asyncio.Task[bool]] = []

    def refresh() -> None:
        if not any(not task.done() for task in refreshing):
            task = asyncio.create_task(refresh_from_any_broker(consumer, timeout_s))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a closed client: nothing to say
            refreshing[:] = [task]

    async def watched(assignment: Any, node_id: int, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle

        def stalled() -> None:
            nonlocal timer
            refresh()
            timer = loop.call_later(grace_s, stalled)
        timer = loop.call_later(stall_s, stalled)
        try:
            return await work(assignment, node_id, *args)
        finally:
            timer.cancel()
    fetcher._proc_fetch_request = watched


# --- producers ----------------------------------------------------------------------------------

def transactional_producer(settings: Settings, transactional_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(**settings.kafka_kwargs(), transactional_id=transactional_id,
                            max_request_size=settings.max_message_bytes, max_batch_size=1024 * 1024, linger_ms=0,
                            request_timeout_ms=settings.request_timeout_ms,
                            transaction_timeout_ms=settings.transaction_timeout_ms)


def idempotent_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(**settings.kafka_kwargs(), enable_idempotence=True, acks="all",
                            max_request_size=settings.max_message_bytes, max_batch_size=1024 * 1024, linger_ms=0,
                            request_timeout_ms=settings.request_timeout_ms)


async def fence(producer: AIOKafkaProducer) -> None:
    """Register the producer's transactional id (InitProducerId, which ``begin_transaction`` waits for):
    the broker fences every older producer with that id and aborts its open transaction."""
    await producer.begin_transaction()
    await producer.abort_transaction()


def abortable(producer: AIOKafkaProducer) -> bool:
    """Whether the current transaction can still be aborted: not while it commits (outcome unknown) or
    after a fatal error. aiokafka asserts on an invalid abort, so the state is read first (private)."""
    return producer._txn_manager.state in _ABORTABLE


def forget_failure(producer: AIOKafkaProducer) -> None:
    """Mark the error of a failed transaction as seen where aiokafka leaves it unseen (private): the
    transaction's waiter and the drain waiter of each failed record batch. The caller has handled the
    error; unseen, it is logged as a "Future exception was never retrieved" traceback when the
    producer is dropped (issue 22)."""
    accumulator = producer._message_accumulator
    batches = [*itertools.chain.from_iterable(accumulator._batches.values()), *accumulator._pending_batches]
    for waiter in [producer._txn_manager.wait_for_transaction_end(), *(b._drain_waiter for b in batches)]:
        if waiter.done() and not waiter.cancelled():
            waiter.exception()


async def refresh_metadata(producer: AIOKafkaProducer) -> None:
    """Fetch the cluster's metadata now (partitions added since the last refresh)."""
    await producer.client.force_metadata_update()


async def refresh_from_any_broker(kafka: AIOKafkaConsumer | AIOKafkaProducer, timeout_s: float) -> bool:
    """Refresh ``kafka``'s cluster metadata from whichever broker answers first: every known broker is
    asked at once, for the topics the client tracks. False if none answered within ``timeout_s``.

    aiokafka's own refresh (on its timer, or after a request timed out) asks one broker picked at
    random and waits its whole request timeout when that broker is frozen (aio-libs/aiokafka#187),
    so a client learns of a leader that moved away from a frozen broker a timeout or two late. Kafka
    drops a fenced broker from the metadata, so one answer after the fence ends every later wait on
    it; a consumer's fetch loop is woken to fetch from the new leaders at once. The client, its
    tracked topics, its connections and the fetch loop's wake-up are aiokafka privates."""
    client = kafka.client if isinstance(kafka, AIOKafkaProducer) else kafka._client
    request = MetadataRequest(sorted(client._topics) or None)  # None: every topic, as aiokafka asks
    asks = [asyncio.ensure_future(client.send(broker.nodeId, request)) for broker in client.cluster.brokers()]
    try:
        for answer in asyncio.as_completed(asks, timeout=timeout_s):
            try:
                metadata = await answer
            except KafkaError:  # that broker is down, or not reachable yet: another may answer
                continue
            if metadata.brokers:
                client.cluster.update_metadata(metadata)
                if isinstance(kafka, AIOKafkaConsumer):  # its fetch loop plans again now, not on its timer
                    kafka._fetcher._notify(kafka._fetcher._wait_consume_future)
                return True
        return False
    except TimeoutError:
        return False
    finally:
        for ask in asks:
            ask.cancel()
        await asyncio.gather(*asks, return_exceptions=True)


async def topics_seen_by_every_broker(admin: AIOKafkaAdminClient, names: Sequence[str]) -> bool:
    """Whether every broker that answers lists each of ``names`` with its partitions.

    KRaft brokers apply a new topic each at its own pace, and aiokafka's admin client asks a broker
    picked at random: a topic one broker already lists may be unknown to the next client that asks
    another. A broker that does not answer (down) is left out. The admin's client is private."""
    client = admin._client
    request = MetadataRequest(list(names))
    answers = await asyncio.gather(*(client.send(b.nodeId, request) for b in client.cluster.brokers()),
                                   return_exceptions=True)
    seen = [a.to_object()["topics"] for a in answers if not isinstance(a, BaseException)]
    return bool(seen) and all(len(topics) == len(names) and all(t["error_code"] == 0 and t["partitions"]
                                                                for t in topics) for topics in seen)


async def routes(producer: AIOKafkaProducer, records: Mapping[str, Sequence[OutRecord]]) -> dict[str, list[int]]:
    """The partitions of every topic written to, refreshed once when a record names one not listed:
    partitions may have been added since, and its reader waits on that one only."""
    found = {}
    for topic, batch in records.items():
        if batch:
            known = await producer.partitions_for(topic)  # waits only for a topic not yet seen
            if any(r.partition is not None and r.partition not in known for r in batch):
                await refresh_metadata(producer)
                known = await producer.partitions_for(topic)
            found[topic] = sorted(known or {0})
    return found


async def send(producer: AIOKafkaProducer, records: Mapping[str, Sequence[OutRecord]],
               partitions: Mapping[str, list[int]]) -> None:
    """Produce ``records`` (topic -> records; ``partitions`` from :func:`routes`) and wait for the
    acknowledgements, one record batch per partition (cheaper than a send per record). A record goes to
    the partition it names when the topic has it, else (keyed records on a multi-partition topic, as the
    response topic allows) to one chosen by a stable hash of its key (docs/design.md §4.3)."""
    futures = []
    for topic, batch in records.items():
        if not batch:
            continue
        known = partitions[topic]
        by_partition: dict[int, list[OutRecord]] = {}
        for record in batch:
            if record.partition is not None and record.partition in known:
                partition = record.partition
            else:
                partition = known[zlib.crc32(record.key or b"") % len(known)]
            by_partition.setdefault(partition, []).append(record)
        for partition, group in by_partition.items():
            builder = producer.create_batch()
            for record in group:
                if builder.append(key=record.key, value=record.value, timestamp=None, headers=record.headers) is None:
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = producer.create_batch()  # an empty batch takes any one record
                    builder.append(key=record.key, value=record.value, timestamp=None, headers=record.headers)
            futures.append(await producer.send_batch(builder, topic, partition=partition))
    if futures:
        await asyncio.gather(*futures)


# --- the role's group ---------------------------------------------------------------------------

class _HolderKeeps(AbstractPartitionAssignor):
    """Gives the role's partition to the member that holds the role, so a member that joins or leaves
    does not move it: each member names in its join metadata when it took the role (epoch ms; nothing
    without it), and the latest one keeps it (it fenced any earlier one). With no holder, the first
    member by id gets it; other partitions (of the response topic) go round robin."""

    name = "eventconfig-holder-keeps"
    version = 0

    def __init__(self, tp: TopicPartition, held_since: Callable[[], int | None]) -> None:
        self.tp, self.held_since = tp, held_since

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        since = self.held_since()
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics),
                                              b"" if since is None else since.to_bytes(8, "big"))

    def assign(self, cluster: Any, members: Mapping[str, Any]) -> dict[str, Any]:
        ordered = sorted(members)
        claims = {m: int.from_bytes(meta.user_data, "big") for m, meta in members.items() if meta.user_data}
        holder = max(claims, key=lambda m: (claims[m], m)) if claims else ordered[0]
        owned: dict[str, dict[str, list[int]]] = {m: {} for m in ordered}
        for topic in sorted({t for meta in members.values() for t in meta.subscription}):
            for i, partition in enumerate(sorted(cluster.partitions_for_topic(topic) or ())):
                owner = holder if TopicPartition(topic, partition) == self.tp else ordered[i % len(ordered)]
                owned[owner].setdefault(topic, []).append(partition)
        return {m: ConsumerProtocolMemberAssignment(self.version, sorted(owned[m].items()), b"") for m in ordered}

    def on_assignment(self, assignment: Any) -> None:
        pass


class _Listener(ConsumerRebalanceListener):
    """Keeps the role through a rebalance that leaves it with this member (aiokafka's rebalances take
    every partition away first): the read position is kept, and only a new assignment without the
    role's partition ends the role (``on_lost``)."""

    def __init__(self, member: GroupMember) -> None:
        self.member = member
        self.rebalances = 0
        self.rebalancing = False
        self.assigned = False
        self._kept: int | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        member = self.member
        self.rebalancing = True
        if member.tp in revoked and member.reading():
            self._kept = await member.consumer.position(member.tp)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        member, kept, self._kept = self.member, self._kept, None
        self.rebalances += 1
        self.rebalancing = False
        self.assigned = member.tp in assigned
        if not self.assigned or (member.reading() and kept is None):  # lost, or its read position unknown
            await member.on_lost()
        elif kept is not None and member.reading():
            member.consumer.seek(member.tp, kept)
            member.read_role_partition_only()


class GroupMember:
    """Membership of a role's consumer group, and reading the role's input partition ``tp``.

    Every process that can play the role is a member; the one assigned ``tp`` should hold the role.
    ``held_since`` says since when (epoch ms) this process holds it, or None; the group keeps ``tp`` with
    the holder across rebalances (safety comes from the transactional fencing, not from the group).
    ``reading`` says whether the role reads ``tp`` now (active): its position survives a rebalance.
    ``on_lost`` is awaited (inside the rebalance) when a rebalance leaves this member without ``tp``."""

    def __init__(self, settings: Settings, group_id: str, tp: TopicPartition,
                 on_lost: Callable[[], Awaitable[None]], held_since: Callable[[], int | None],
                 reading: Callable[[], bool]) -> None:
        self.settings, self.group_id, self.tp = settings, group_id, tp
        self.on_lost, self.held_since, self.reading = on_lost, held_since, reading
        self._consumer: AIOKafkaConsumer | None = None
        self._listener = _Listener(self)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the member has not started"
        return self._consumer

    async def start(self) -> None:
        # The role's group: a member that misses heartbeats for the session is replaced (operations.md, fail-over).
        # One assignor only: offered a second (round robin, for members of older releases), Kafka 4.1's
        # coordinator rebalanced every join once more, and two members starting together sometimes
        # rebalanced without end (hundreds of generations, no holder; issue 23). A member of a release
        # before this assignor is refused (inconsistent protocol) until it leaves: operations.md, upgrades.
        consumer = committed_consumer(self.settings, group_id=self.group_id,
                                      session_timeout_ms=self.settings.writer_session_timeout_ms,
                                      heartbeat_interval_ms=self.settings.writer_heartbeat_interval_ms,
                                      max_poll_interval_ms=300_000,
                                      partition_assignment_strategy=(_HolderKeeps(self.tp, self.held_since),))
        await consumer.start()
        follow_promptly(consumer, self.settings)  # a request waits neither for the loop's timer nor a frozen leader
        self._consumer = consumer
        consumer.subscribe([self.tp.topic], listener=self._listener)

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    @property
    def rebalances(self) -> int:
        """How many rebalances of the group this member has completed (tests wait on it)."""
        return self._listener.rebalances

    @property
    def generation(self) -> int:
        """The group generation this member last joined (private in aiokafka; -1 before the first join).
        Logged when a role becomes active: a number far above the members' count means the group
        rebalanced far more often than members came and went."""
        return self.consumer._coordinator.generation

    def settled_since(self, rebalances: int) -> bool:
        """Whether no rebalance has begun since the member had completed ``rebalances`` of them."""
        return self._listener.rebalances == rebalances and not self._listener.rebalancing

    def assigned(self) -> bool:
        """Whether the last completed rebalance assigned this member the role's partition (during a
        rebalance, the previous answer)."""
        return self._listener.assigned

    async def idle(self) -> None:
        """Poll without reading anything (nothing is ours without the role); keeps the membership alive."""
        self.consumer.pause(*self.consumer.assignment())
        await self.consumer.getmany(timeout_ms=_IDLE_POLL_MS)

    def read_role_partition_only(self) -> None:
        """A multi-partition input (the response topic) is read at the role's partition only."""
        self.consumer.pause(*(self.consumer.assignment() - {self.tp}))
        self.consumer.resume(self.tp)

    async def fetch(self, timeout_ms: int, max_records: int, linger_ms: int = 0) -> list[ConsumerRecord]:
        """The next records of the role's partition (waiting up to ``timeout_ms`` for the first); with
        ``linger_ms``, what else arrives that long after the first joins them (group commit)."""
        fetched = await self.consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=max_records)
        records = fetched.get(self.tp, [])
        deadline = time.monotonic() + linger_ms / 1000
        while records and len(records) < max_records:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            fetched = await self.consumer.getmany(self.tp, timeout_ms=remaining_ms,
                                                  max_records=max_records - len(records))
            records = records + fetched.get(self.tp, [])
        return records

    async def committed(self) -> int | None:
        """The group's committed offset of the role's partition (None: nothing committed)."""
        return await self.consumer.committed(self.tp)

    async def seek(self, offset: int | None) -> None:
        """Read on from ``offset`` (None: the partition's beginning)."""
        if offset is None:
            await self.consumer.seek_to_beginning(self.tp)
        else:
            self.consumer.seek(self.tp, offset)

    async def commit(self, offset: int, metadata: str) -> None:
        """Commit ``offset`` with ``metadata`` for the group, outside any transaction; fails (KafkaError)
        when this member's generation is no longer the group's."""
        await self.consumer.commit({self.tp: OffsetAndMetadata(offset, metadata)})

    async def read(self, start: int, until: int) -> list[ConsumerRecord]:
        """The records of the role's partition from ``start`` up to ``until`` (excluded)."""
        self.consumer.seek(self.tp, start)
        return [record async for batch in read_to_end(self.consumer, self.tp, until=until) for record in batch
                if record.offset < until]

    async def offset_at(self, timestamp_ms: int) -> int | None:
        """The first offset of the role's partition at or after ``timestamp_ms`` (None: none is)."""
        found = (await self.consumer.offsets_for_times({self.tp: timestamp_ms})).get(self.tp)
        return found.offset if found is not None else None

    async def end(self) -> int:
        return await end_offset(self.consumer, self.tp)

    def end_as_fetched(self) -> int:
        """The partition's end as of the last fetch (its last stable offset, read_committed); 0 while a
        rebalance has taken the partition away."""
        if self.tp not in self.consumer.assignment():
            return 0
        return self.consumer.last_stable_offset(self.tp) or self.consumer.highwater(self.tp) or 0


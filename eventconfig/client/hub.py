"""The Kafka connections of the clients of one process: one consumer, and a producer once needed.

A :class:`ConnectionHub` reads, with ONE ``read_committed`` consumer, the client's partition of the
response topic and the notify topic's partition together, so a subscriber's pokes and, when it
fetches, its answers come in the same fetch. Its long poll (``client_fetch_wait_ms``, 5 s) ends at
once when either partition gets a record, so it delays nothing and costs an idle client one fetch
per long poll. A fetch always asks for every partition its broker leads
(``kafka.adapter.fetch_partitions_together``), so a record on one never waits for a long poll that
left it out, and the next fetch goes out as soon as one ends (``kafka.adapter.fetch_again_at_once``),
so the consumer's fetch loop needs no timer of its own: idle, it wakes once per long poll. It creates
its producer on the first request it sends and keeps it: an idle producer sends nothing but a metadata
refresh every five minutes, while a closed one would cost a reconnect (and a metadata round trip) on
the next fetch.

Kafka metadata is refreshed unasked only every ``client_metadata_max_age_ms`` (5 minutes), so an idle
fleet does not spend its CPU on it. A request unanswered for ``client_stalled_request_ms`` refreshes
it at once, from every broker together (and again every two such periods while requests stay
unanswered): a client whose partition's leader froze then follows the leader Kafka moved it to
instead of waiting out a request timeout on the frozen broker (docs/operations.md, fail-over). A
fetch out a second past the long poll does the same (``kafka.adapter.refresh_when_a_fetch_stalls``),
so a subscriber that only reads pokes follows a moved leader too.

By default every :class:`ConfigClient` and :class:`ConfigSubscriber` of a process that uses the
same connection settings, topics and reply partition shares one hub (reference-counted: the last
user to stop closes it); ``share_connections=False`` gives an instance a hub of its own, as a
separate service would have. :func:`connection_stats` lists the hubs of the process.

Example::

    hub = await acquire(settings, reply_partition=None, share=True)
    answer = hub.expect(request_id); await hub.send(topic, value, headers); await answer
    await release(hub)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig import metrics
from eventconfig.client.wire import header_value
from eventconfig.codec import default_codec
from eventconfig.errors import EventConfigError
from eventconfig.kafka.adapter import fetch_partitions_together, follow_promptly, refresh_from_any_broker
from eventconfig.kafka.connect import start_or_close
from eventconfig.kafka.reading import committed_consumer
from eventconfig.model import ID_HEADER
from eventconfig.settings import Settings

log = logging.getLogger(__name__)

PokeListener = Callable[[Sequence[ConsumerRecord]], None]
_RETRY_S = 0.5


class ClientError(EventConfigError):
    """The client cannot talk to Kafka (not started, stopped, topics missing, reader died)."""


def kafka_unreachable(settings: Settings, exc: Exception) -> ClientError:
    """What a Kafka error while starting a client (or subscriber, or local view) becomes."""
    return ClientError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}")


@dataclass(frozen=True)
class HubStats:
    """What :func:`connection_stats` reports of one hub."""

    bootstrap_servers: str
    reply_partition: int | None
    reads_pokes: bool
    users: int
    consumers: int  # always 1
    producers: int  # 0 until the first request is sent
    responses_read: int
    pending: int  # requests awaiting their answer


class ConnectionHub:
    """One consumer (answers on one response partition, and pokes) and a lazily made producer."""

    def __init__(self, settings: Settings, reply_partition: int | None = None) -> None:
        self.settings = settings
        self._wanted_partition = reply_partition
        self.reply_partition: int | None = None
        self.reads_pokes = False
        self.has_read_topic = False  # reads may go to the read topic (docs/design.md §6)
        self.users = 0
        self.responses_read = 0  # records read on the reply partition: its own answers and those sharing it
        self.failure: EventConfigError | None = None
        self._consumer: Any = None
        self._producer: Any = None
        self._producer_lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[PokeListener] = []
        self._notify = TopicPartition(settings.topics.notify, 0)
        self._reader: asyncio.Task[None] | None = None
        self._codec = default_codec()
        # The Kafka clients this hub made, by kind: counted in the metric, refreshed on a stall (adopted
        # ones are neither).
        self._made: list[tuple[str, Any]] = []
        self._stall_timer: asyncio.TimerHandle | None = None
        self._asked: dict[str, float] = {}  # when each pending request was registered (loop time)
        self._refreshed_at = float("-inf")  # loop time of the last stall refresh
        self._sending = 0  # sends awaiting the broker's acknowledgement
        self._refreshing: asyncio.Task[bool] | None = None

    def _count(self, kind: str, client: Any) -> None:
        self._made.append((kind, client))
        metrics.CLIENT_KAFKA_CLIENTS.labels(kind).inc()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and put the consumer at the end of the reply partition (and the notify partition,
        when that topic exists) before any request can be sent."""
        s, topics = self.settings, self.settings.topics
        # A fetch the broker holds for the long poll must not count against the request timeout. The
        # fetch loop wakes on every event that gives it work (a fetch ended, records taken, a seek, a
        # metadata refresh of ours); its timer (aiokafka's default 200 ms) would only cost idle CPU.
        consumer = committed_consumer(s, request_timeout_ms=s.client_fetch_wait_ms + s.request_timeout_ms,
                                      fetch_max_wait_ms=s.client_fetch_wait_ms,
                                      consumer_timeout_ms=s.client_fetch_wait_ms,
                                      metadata_max_age_ms=s.client_metadata_max_age_ms)
        try:
            await consumer.start()
            fetch_partitions_together(consumer)  # a late turn of the loop must not hold a poke for a long poll
            follow_promptly(consumer, s)  # nor a fetch loop that woke as a fetch ended, nor a frozen leader
            known = await consumer.topics()
            missing = [t for t in (topics.request, topics.response) if t not in known]
            if missing:
                raise ClientError(f"topic(s) {', '.join(missing)} do not exist; run `eventconfig topics create`")
            self.reads_pokes = topics.notify in known
            self.has_read_topic = topics.read in known
            if s.client_reads_on_read_topic and not self.has_read_topic:
                log.warning("the read topic %s does not exist; reads go to the request topic (run `eventconfig "
                            "topics create` to add it)", topics.read)
            extra = [self._notify] if self.reads_pokes else []
            first = TopicPartition(topics.response, 0)  # every topic has it
            await _assign_at_end(consumer, [first, *extra])  # also learns the response topic's partitions
            partition = self._pick_partition(sorted(consumer.partitions_for_topic(topics.response) or ()))
            final = [TopicPartition(topics.response, partition), *extra]
            if partition != first.partition:
                await _assign_at_end(consumer, final)
            consumer.resume(*final)  # the long poll starts now: no offset lookup is left to queue behind it
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await consumer.stop()
            if isinstance(exc, KafkaError):
                raise kafka_unreachable(s, exc) from exc
            raise
        self._count("consumer", consumer)
        self._run(consumer, None, partition)

    @classmethod
    def adopt(cls, settings: Settings, producer: Any, consumer: Any, reply_partition: int | None) -> ConnectionHub:
        """A private hub around started Kafka clients (tests pass fakes here)."""
        hub = cls(settings, reply_partition)
        hub._run(consumer, producer, reply_partition)
        return hub

    def _run(self, consumer: Any, producer: Any, reply_partition: int | None) -> None:
        self._consumer, self._producer, self.reply_partition = consumer, producer, reply_partition
        _LIVE.add(self)
        self._reader = asyncio.create_task(self._read(), name="eventconfig-client-reader")

    def _pick_partition(self, partitions: list[int]) -> int:
        if self._wanted_partition is None:
            return random.choice(partitions)
        if self._wanted_partition not in partitions:
            raise ClientError(f"the response topic {self.settings.topics.response} has no partition "
                              f"{self._wanted_partition} (it has {len(partitions)})")
        return self._wanted_partition

    async def stop(self) -> None:
        """Fail pending calls, then close the Kafka clients."""
        reader, self._reader = self._reader, None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        for task in (reader, self._refreshing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self.fail(list(self._pending), ClientError("ConfigClient stopped"))
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        for kind, _ in self._made:
            metrics.CLIENT_KAFKA_CLIENTS.labels(kind).dec()
        self._made = []
        self._consumer = self._producer = None
        _LIVE.discard(self)

    # --- requests ---------------------------------------------------------------------------

    def expect(self, request_id: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the decoded answer to ``request_id`` (register it before sending)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._asked[request_id] = asyncio.get_running_loop().time()
        self._watch_stalls()
        return future

    def forget(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    def fail(self, request_ids: Sequence[str], error: EventConfigError) -> None:
        for request_id in request_ids:
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(error)

    async def send(self, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        producer = self._producer or await self._start_producer()
        self._sending += 1
        try:
            await producer.send_and_wait(topic, value, headers=headers)
        finally:
            self._sending -= 1

    async def _start_producer(self) -> Any:
        async with self._producer_lock:
            if self._producer is None:
                s = self.settings
                producer = AIOKafkaProducer(**{**s.kafka_kwargs(), "metadata_max_age_ms": s.client_metadata_max_age_ms},
                                            acks="all", enable_idempotence=True, linger_ms=0,
                                            max_request_size=s.max_message_bytes,
                                            request_timeout_ms=s.request_timeout_ms)
                await start_or_close(producer)
                self._count("producer", producer)
                self._producer = producer
            return self._producer

    # --- stalls -----------------------------------------------------------------------------

    def _watch_stalls(self) -> None:
        """Arm the stall check for when the oldest pending request will have waited a period, or for when
        the back-off lets the next refresh go out (an idle hub sets no timer)."""
        if self._stall_timer is not None or not self._pending or not self._made:
            return
        loop = asyncio.get_running_loop()
        period = self.settings.client_stalled_request_ms / 1000
        due = min(self._asked.get(request_id, loop.time()) for request_id in self._pending) + period
        refreshing = self._refreshing is not None and not self._refreshing.done()
        floor = loop.time() + (period if refreshing else 0.01)  # a refresh under way: look again a period on
        self._stall_timer = loop.call_at(max(due, self._refreshed_at + 2 * period, floor), self._check_stalls)

    def _check_stalls(self) -> None:
        """Refresh the metadata when a request has waited a period; while requests keep waiting, the next
        refresh waits two periods, so a deploy or an outage that slows every answer costs a waiting hub
        one metadata request per broker every two periods (the consumer's; the producer's only while a
        send waits for its acknowledgement), not a flood."""
        self._stall_timer = None
        now, period = asyncio.get_running_loop().time(), self.settings.client_stalled_request_ms / 1000
        self._asked = {request_id: t for request_id, t in self._asked.items() if request_id in self._pending}
        stalled = any(now - t >= period for t in self._asked.values())
        if stalled and now >= self._refreshed_at + 2 * period and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh(), name="eventconfig-client-refresh")
            self._refreshed_at = now
        self._watch_stalls()

    async def _refresh(self) -> bool:
        """Refresh the consumer's metadata (and the producer's while a send waits); False if one got no
        answer in time."""
        timeout_s = self.settings.request_timeout_ms / 1000
        clients = [c for kind, c in self._made if kind == "consumer" or self._sending]
        done = await asyncio.gather(*(refresh_from_any_broker(c, timeout_s) for c in clients), return_exceptions=True)
        failed = ["no broker answered" if d is False else repr(d) for d in done if d is not True]
        if failed:
            log.warning("refreshing the Kafka metadata after a stalled request failed for %d of %d Kafka "
                        "clients: %s", len(failed), len(done), "; ".join(failed))
        metrics.CLIENT_STALL_REFRESHES.labels("failed" if failed else "ok").inc()
        return not failed

    # --- pokes ------------------------------------------------------------------------------

    def add_listener(self, listener: PokeListener) -> None:
        """Call ``listener(records)`` with every batch of pokes read from now on, in order."""
        if not self.reads_pokes:
            raise ClientError(f"topic {self.settings.topics.notify} does not exist; run `eventconfig topics create`")
        self._listeners.append(listener)

    def remove_listener(self, listener: PokeListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # --- the reader -------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                try:
                    batches = await self._consumer.getmany(timeout_ms=60_000)
                except KafkaError as exc:  # the consumer reconnects by itself: keep reading
                    log.warning("reading answers and pokes failed (%s); retrying", exc)
                    await asyncio.sleep(_RETRY_S)
                    continue
                for tp, records in batches.items():
                    if tp == self._notify:
                        for listener in list(self._listeners):
                            listener(records)
                        continue
                    self.responses_read += len(records)
                    for record in records:
                        self._deliver(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dead reader must not leave callers waiting for their timeout
            log.error("response reader stopped: %r", exc)
            self.failure = ClientError(f"response reader stopped: {type(exc).__name__}: {exc}")
            self.fail(list(self._pending), self.failure)
            _HUBS.pop(_key_of.get(self, ()), None)

    def _deliver(self, record: Any) -> None:
        request_id = header_value(record.headers, ID_HEADER)
        future = self._pending.pop(request_id, None) if request_id else None
        if future is None or future.done():
            return  # another client's response, or one whose caller gave up
        try:
            if record.value is None:
                raise ClientError(f"empty response to request {request_id}")
            future.set_result(self._codec.decode("ConfigResponse", record.value))
        except EventConfigError as exc:
            future.set_exception(exc)

    def stats(self) -> HubStats:
        return HubStats(self.settings.bootstrap_servers, self.reply_partition, self.reads_pokes, self.users,
                        int(self._consumer is not None), int(self._producer is not None), self.responses_read, len(self._pending))


async def _assign_at_end(consumer: Any, partitions: list[TopicPartition]) -> None:
    """Read ``partitions`` from their ends, resolved now: a lazy position could land after an answer.

    They stay paused (the caller resumes them): a fetch would hold the connection for a whole long
    poll, and Kafka answers one request per connection at a time, so the offset lookups of a second
    assignment would wait behind it."""
    consumer.assign(partitions)
    consumer.pause(*partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)


# --- the process-wide registry ---------------------------------------------------------------

_LIVE: set[ConnectionHub] = set()  # every running hub, shared or not
_HUBS: dict[tuple[Any, ...], ConnectionHub] = {}  # the shared ones, by key
_key_of: dict[ConnectionHub, tuple[Any, ...]] = {}
_starting: dict[tuple[Any, ...], asyncio.Future[ConnectionHub]] = {}


def _key(settings: Settings, reply_partition: int | None) -> tuple[Any, ...]:
    """What hubs are shared by: the event loop, the connection settings, the topics, the partition."""
    s = settings
    return (asyncio.get_running_loop(), s.bootstrap_servers, s.security_protocol, s.sasl_mechanism,
            s.sasl_username, s.sasl_password, s.ssl_cafile, s.ssl_certfile, s.ssl_keyfile, s.topics,
            s.max_message_bytes, s.request_timeout_ms, s.client_fetch_wait_ms, s.client_metadata_max_age_ms,
            s.client_stalled_request_ms, reply_partition)


async def acquire(settings: Settings, reply_partition: int | None = None, *, share: bool = True) -> ConnectionHub:
    """A started hub for these settings: the process's shared one (started on first use), or with
    ``share`` False one of its own. Pair every acquire with a :func:`release`."""
    if not share:
        own = ConnectionHub(settings, reply_partition)
        await own.start()
        own.users = 1
        return own
    key = _key(settings, reply_partition)
    while (hub := _HUBS.get(key)) is None:
        starting = _starting.get(key)
        if starting is not None:
            await asyncio.shield(starting)  # another caller is starting it: share it, or share its failure
            continue
        future: asyncio.Future[ConnectionHub] = asyncio.get_running_loop().create_future()
        _starting[key] = future
        try:
            hub = ConnectionHub(settings, reply_partition)
            await hub.start()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it themselves
            raise
        finally:
            _starting.pop(key, None)
        _HUBS[key], _key_of[hub] = hub, key
        future.set_result(hub)
    hub.users += 1
    return hub


async def release(hub: ConnectionHub) -> None:
    """One user fewer; the last one closes the hub."""
    hub.users -= 1
    if hub.users > 0:
        return
    key = _key_of.pop(hub, None)
    if key is not None and _HUBS.get(key) is hub:
        del _HUBS[key]
    await hub.stop()


def connection_stats() -> list[HubStats]:
    """The running hubs of this process, shared or not: one consumer each, a producer once used."""
    return [hub.stats() for hub in _LIVE]

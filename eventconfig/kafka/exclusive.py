"""A role that exactly one process of a deployment plays at a time, with exactly-once output.

The writer (input: the request topic) and the push projector (input: the log topic) share this
shape: every process that can play the role joins one consumer group on the input topic; the member
assigned the role's partition (the input's only one; partition 0 of the response topic for the
TrustGraph translator) is the one that should be active, and reads only that partition. Activation
starts the role's transactional producer (fencing the previous holder and aborting its open
transaction), lets the role catch up its state, and seeks to the committed input offset (the
group's, unless the role keeps it elsewhere: ``committed_offset``). Each batch it consumes becomes
one transaction of output records plus the input offset.

Whether to be active is derived on every step from the assignment, never remembered in a flag:
assigned and not active means (re-)activate, with a back-off after a failure; revoked means step
down. So a failed activation, a failed transaction or a fencing while still assigned all end in a
retry rather than in a role that nobody holds.

Example::

    class Echo(ExclusiveRole):
        async def handle(self, records): await self.commit({"out": [...]}, records[-1].offset + 1)
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig import metrics
from eventconfig.errors import EventConfigError
from eventconfig.kafka.reading import committed_consumer
from eventconfig.kafka.transactions import Fenced, TransactionalSender, TransactionFailed
from eventconfig.logrecords import OutRecord
from eventconfig.settings import Settings

log = logging.getLogger(__name__)

_RETRY_S = 1.0  # after a failed activation or transaction; also lets a stale member see a rebalance


class _Membership(ConsumerRebalanceListener):
    def __init__(self, role: ExclusiveRole) -> None:
        self.role = role

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self.role.tp in revoked:
            await self.role.step_down("partition revoked")

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pass  # _step sees the assignment


class ExclusiveRole(ABC):
    """Group membership, activation, batching and transactional commits of one exclusive role."""

    max_records = 500

    def __init__(self, settings: Settings, role: str, topic: str, partition: int = 0) -> None:
        self.settings = settings
        self.role = role
        self.tp = TopicPartition(topic, partition)
        self.group_id = settings.group_id(role)
        self.sender = TransactionalSender(settings, role)
        self.active = False
        self.consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._not_before = 0.0  # monotonic time before which no activation is tried
        self.commit_error: EventConfigError | None = None  # why the last commit() failed, if it did

    # --- what a role provides -------------------------------------------------------------------

    @abstractmethod
    async def on_activate(self) -> dict[str, Any]:
        """Rebuild in-memory state from committed state; return fields for the 'active' log line."""

    @abstractmethod
    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Process a batch (possibly empty, see ``poll_ms``) and ``commit`` its output."""

    async def on_resume(self, consumer: AIOKafkaConsumer, committed: int | None) -> dict[str, Any]:
        """Recover what the previous holder left before ``committed`` (the consumer is then moved to
        ``committed``); return fields for the 'active' log line."""
        return {}

    async def committed_offset(self, consumer: AIOKafkaConsumer) -> int | None:
        """Where to resume the input (after on_activate): the group's committed offset by default."""
        return await consumer.committed(self.tp)

    def poll_ms(self) -> int | None:
        """How long to wait for input; return a number to be called with empty batches too."""
        return None

    def linger_ms(self) -> int:
        """After the first records arrive, how long to wait for more to join the same transaction."""
        return 0

    async def settle(self) -> None:
        """Finish work still in flight (a pipelined commit) before the producer is replaced or stopped."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def wait_active(self, timeout: float) -> None:
        """Wait until this process holds the role (tests, readiness)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def run(self) -> None:
        consumer = committed_consumer(self.settings, group_id=self.group_id,
                                      session_timeout_ms=self.settings.writer_session_timeout_ms,
                                      heartbeat_interval_ms=self.settings.writer_heartbeat_interval_ms,
                                      max_poll_interval_ms=300_000)
        await consumer.start()
        self.consumer = consumer
        consumer.subscribe([self.tp.topic], listener=_Membership(self))
        log.info("joined group; waiting to become active", extra={"fields": {"role": self.role,
                                                                             "group": self.group_id}})
        try:
            while True:
                try:
                    await self._step(consumer)
                except KafkaError as exc:
                    log.warning("%s loop: %s; retrying in %.0f s", self.role, exc, _RETRY_S)
                    await self._fail()
                    await asyncio.sleep(_RETRY_S)
        finally:
            await self.step_down("stopping")
            await consumer.stop()

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        assigned = self.tp in consumer.assignment()
        if assigned and not self.active and time.monotonic() >= self._not_before:
            await self._activate(consumer)
        if not self.active:
            consumer.pause(*consumer.assignment())  # nothing here is ours until activation
            await consumer.getmany(timeout_ms=200)  # keeps the membership alive
            return
        wait = self.poll_ms()
        fetched = await consumer.getmany(self.tp, timeout_ms=100 if wait is None else wait,
                                         max_records=self.max_records)
        records = fetched.get(self.tp, [])
        linger = self.linger_ms() if records else 0
        if linger:
            records = await self._more(consumer, records, linger)
        if records or wait is not None:
            async with self._lock:
                if self.active:
                    await self.handle(records)

    async def _more(self, consumer: AIOKafkaConsumer, records: list[ConsumerRecord],
                    linger_ms: int) -> list[ConsumerRecord]:
        """Group commit: gather what arrives within ``linger_ms`` into one batch."""
        deadline = time.monotonic() + linger_ms / 1000
        while len(records) < self.max_records:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            fetched = await consumer.getmany(self.tp, timeout_ms=remaining_ms,
                                             max_records=self.max_records - len(records))
            records = records + fetched.get(self.tp, [])
        return records

    async def _activate(self, consumer: AIOKafkaConsumer) -> None:
        async with self._lock:
            await self.settle()
            started = time.monotonic()
            # A multi-partition input (the response topic) is read at the role's partition only.
            consumer.pause(*(consumer.assignment() - {self.tp}))
            consumer.resume(self.tp)
            try:
                await self.sender.restart()  # fences the previous holder, aborts its open transaction
                fields = await self.on_activate()
                committed = await self.committed_offset(consumer)
                fields.update(await self.on_resume(consumer, committed))
            except (EventConfigError, KafkaError, asyncio.TimeoutError) as exc:
                log.warning("could not take the %s role (%s); retrying in %.0f s", self.role, exc, _RETRY_S)
                await self._fail()
                return
            if self.tp not in consumer.assignment():  # revoked while catching up
                await self.sender.stop()
                return
            if committed is None:
                await consumer.seek_to_beginning(self.tp)
            else:
                consumer.seek(self.tp, committed)
            self.active = True
            self._ready.set()
            metrics.ROLE_ACTIVE.labels(self.role).set(1)
            log.info("active", extra={"fields": {"role": self.role, **fields, "input_offset": committed,
                                                 "took_s": round(time.monotonic() - started, 3)}})

    async def step_down(self, reason: str) -> None:
        async with self._lock:
            if self.active:
                log.info("stepping down", extra={"fields": {"role": self.role, "reason": reason}})
            await self.settle()
            self._deactivate()
            await self.sender.stop()

    def _deactivate(self) -> None:
        self.active = False
        self._ready.clear()
        metrics.ROLE_ACTIVE.labels(self.role).set(0)

    async def _fail(self) -> None:
        """Drop the role after a failure; while still assigned it is taken again after a pause."""
        self._deactivate()
        self._not_before = time.monotonic() + _RETRY_S
        await self.sender.stop()

    async def commit(self, records: Mapping[str, Sequence[OutRecord]], next_offset: int | None,
                     metadata: str = "") -> bool:
        """One transaction of ``records`` and the input offset (with ``metadata`` for the next holder);
        False (and recovery) if it failed."""
        offsets = {self.tp: (next_offset, metadata)} if next_offset is not None else None
        try:
            await self.sender.commit(records, offsets=offsets, group_id=self.group_id)
            self.commit_error = None
            return True
        except (Fenced, TransactionFailed) as exc:
            self.commit_error = exc
            reason = "fenced" if isinstance(exc, Fenced) else "failed"
            metrics.TRANSACTION_FAILURES.labels(self.role, reason).inc()
            log.warning("%s transaction %s: %s; redoing from committed state", self.role, reason, exc)
            # Still assigned: re-activate (from committed state) after a pause. A stale member that was
            # fenced by the rightful holder learns of the rebalance within that pause and stays down.
            self._deactivate()
            self._not_before = time.monotonic() + _RETRY_S
            return False

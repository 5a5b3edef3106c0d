"""A role that exactly one process of a deployment plays at a time, with exactly-once output.

The writer (input: the request topic), the push projector (input: the log topic) and the two
TrustGraph roles share this shape, built from three parts with one job each:

* :class:`~eventconfig.kafka.adapter.GroupMember`: membership of the role's consumer group. Every
  process that can play the role is a member; the one assigned the role's partition (the input's
  only one; partition 0 of the response topic for the TrustGraph translator) should be active, and
  reads only that partition.
* :class:`~eventconfig.kafka.transactions.TransactionalSender`: the role's transactional producer.
  Starting it fences the previous holder and aborts its open transaction.
* :class:`~eventconfig.kafka.commits.CommitPipeline`: each batch's output and the input offset in
  one transaction, in order; a failed commit is reported once, to :meth:`ExclusiveRole._fail`.

:class:`ExclusiveRole` drives them through the states of :mod:`eventconfig.kafka.role_state`,
one method per transition: :meth:`_take_over` (standby -> catching up -> active), :meth:`_fail`
(-> failing, retried after a pause while still assigned) and :meth:`_step_down` (-> standby). A
role provides what it does in each: :meth:`take_over` (rebuild state, say where to resume),
:meth:`handle` (a batch), and optionally :meth:`abandon` (drop what depended on a failed commit).

Example::

    class Echo(ExclusiveRole):
        async def take_over(self): return Resume(await self.member.committed())
        async def handle(self, records): await self.commits.commit({"out": [...]}, records[-1].offset + 1)
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventconfig import metrics
from eventconfig.errors import EventConfigError
from eventconfig.kafka.adapter import ConsumerRecord, GroupMember, KafkaError, TopicPartition
from eventconfig.kafka.commits import CommitPipeline
from eventconfig.kafka.role_state import RoleMachine, RoleRefused, State, Step
from eventconfig.kafka.transactions import Fenced, TransactionalSender, TransactionFailed
from eventconfig.settings import Settings

log = logging.getLogger(__name__)

_RETRY_S = 1.0  # after a failed activation or transaction; also lets a stale member see a rebalance


@dataclass
class Resume:
    """Where an activation resumes its input (None: the partition's beginning), and what to log."""

    offset: int | None
    fields: dict[str, Any] = field(default_factory=dict)


class ExclusiveRole(ABC):
    """One exclusive role in this process: its group membership, producer, commits and state."""

    max_records = 500

    def __init__(self, settings: Settings, role: str, topic: str, partition: int = 0) -> None:
        self.settings = settings
        self.role = role
        self.tp = TopicPartition(topic, partition)
        self.group_id = settings.group_id(role)
        self.member = GroupMember(settings, self.group_id, self.tp, on_lost=self._lost, held_since=self._held_since,
                                  reading=lambda: self.active)
        self.sender = TransactionalSender(settings, role)
        self.commits = CommitPipeline(self.sender, self.group_id, self.tp, on_failure=self._commit_failed)
        self.machine = RoleMachine(retry_s=_RETRY_S, fenced_wait_s=settings.writer_session_timeout_ms / 1000)
        self._lock = asyncio.Lock()  # one transition or one batch at a time
        self._active = asyncio.Event()
        self.activations = 0  # how often this process took the role (tests, logs)
        self._taken_at_ms = 0  # when the current take-over began (epoch ms)
        self._refusal = ""  # why the last take-over refused ("" when it did not): logged once

    # --- what a role provides -------------------------------------------------------------------

    @abstractmethod
    async def take_over(self) -> Resume:
        """Catch up: rebuild in-memory state from committed state (the previous holder is fenced) and
        say where to resume the input; raise to fail the take-over."""

    @abstractmethod
    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Process a batch (possibly empty, see ``poll_ms``) and commit its output through ``commits``."""

    def abandon(self, error: EventConfigError, batch: Any) -> None:
        """A commit failed (``batch`` as given to ``commits``): drop whatever depended on it."""

    def poll_ms(self) -> int | None:
        """How long to wait for input; return a number to be called with empty batches too."""
        return None

    def linger_ms(self) -> int:
        """After the first records arrive, how long to wait for more to join the same transaction."""
        return 0

    # --- observing ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def active(self) -> bool:
        return self.machine.state is State.ACTIVE

    async def wait_active(self, timeout: float) -> None:
        """Wait until this process holds the role (tests, readiness)."""
        await asyncio.wait_for(self._active.wait(), timeout)

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.member.start()
        log.info("joined group; waiting to become active", extra={"fields": {"role": self.role,
                                                                             "group": self.group_id}})
        try:
            while True:
                try:
                    await self._step()
                except KafkaError as exc:
                    await self._fail(f"{self.role} loop", exc)
                    await asyncio.sleep(_RETRY_S)
        finally:
            await self._step_down("stopping")
            await self.member.stop()

    async def _step(self) -> None:
        step = self.machine.next_step(self.member.assigned(), time.monotonic(), self.member.rebalances)
        if step is Step.TAKE_OVER:
            await self._take_over()
        elif step is Step.STEP_DOWN:
            await self._step_down("partition revoked")
        if not self.active:
            await self.member.idle()
            return
        wait = self.poll_ms()
        records = await self.member.fetch(100 if wait is None else wait, self.max_records, self.linger_ms())
        if records or wait is not None:
            async with self._lock:
                if self.active:
                    await self.handle(records)

    # --- the transitions ------------------------------------------------------------------------

    async def _take_over(self) -> None:
        """standby/failing -> catching up -> active (or failing, or standby if revoked meanwhile)."""
        async with self._lock:
            await self.commits.drain()  # the previous activation's last commit
            self.machine.catching_up()
            started, rebalances = time.monotonic(), self.member.rebalances
            self._taken_at_ms = int(time.time() * 1000)
            try:
                self.member.read_role_partition_only()
                await self.sender.restart()  # fences the previous holder, aborts its open transaction
                self.commits.reset()
                resume = await self.take_over()
            except RoleRefused as exc:
                if self.machine.state is State.CATCHING_UP:
                    await self._refuse(exc)
                return
            except (EventConfigError, KafkaError, asyncio.TimeoutError) as exc:
                if self.machine.state is State.CATCHING_UP:  # else a commit of the take-over failed: handled
                    await self._fail(f"could not take the {self.role} role", exc)
                return
            await self.member.seek(resume.offset)
            # A rebalance while catching up may have moved the partition, or reset its read position.
            if not (self.member.assigned() and self.member.settled_since(rebalances)):
                self.machine.stepped_down()
                await self.sender.stop()
                return
            self.machine.activated()  # no await since the check: the position is the one just sought
            self.activations += 1
            if self._refusal:
                log.warning("no longer refusing", extra={"fields": {"role": self.role, "was": self._refusal}})
                self._refusal = ""
            metrics.ROLE_REFUSING.labels(self.role).set(0)
            self._active.set()
            metrics.ROLE_ACTIVE.labels(self.role).set(1)
            log.info("active", extra={"fields": {"role": self.role, **resume.fields, "input_offset": resume.offset,
                                                 "generation": self.member.generation,
                                                 "took_s": round(time.monotonic() - started, 3)}})

    async def _refuse(self, error: RoleRefused) -> None:
        """catching up -> refusing: write nothing, say why once (and whenever the reason changes), and
        check again after ``refuse_s``, so an operator's fix is picked up (kafka/role_state.py)."""
        if str(error) != self._refusal:
            log.error("%s role refuses to take over: %s; checking again every %.0f s", self.role, error,
                      self.machine.refuse_s)
            self._refusal = str(error)
        metrics.ROLE_REFUSING.labels(self.role).set(1)
        self.machine.refused(time.monotonic())
        self._inactive()
        await self.sender.stop()

    def _held_since(self) -> int | None:
        """When this process took the role (epoch ms) if it holds or is taking it: the group keeps the
        partition with it across a rebalance (kafka/adapter.py)."""
        return self._taken_at_ms if self.machine.state in (State.CATCHING_UP, State.ACTIVE) else None

    async def _lost(self) -> None:
        await self._step_down("partition revoked")

    async def _step_down(self, reason: str) -> None:
        """-> standby: the partition was revoked or the process stops."""
        async with self._lock:
            if self.machine.state is not State.STANDBY:
                log.info("stepping down", extra={"fields": {"role": self.role, "reason": reason,
                                                            "state": self.machine.state.value}})
            await self.commits.drain()
            self.machine.stepped_down()
            self._inactive()
            metrics.ROLE_REFUSING.labels(self.role).set(0)  # the role is no longer this process's to refuse
            await self.sender.stop()

    async def _commit_failed(self, error: TransactionFailed | Fenced, batch: Any) -> None:
        """The one handler of a failed commit: drop what depended on it, redo from committed state."""
        reason = "fenced" if isinstance(error, Fenced) else "failed"
        metrics.TRANSACTION_FAILURES.labels(self.role, reason).inc()
        self.abandon(error, batch)
        await self._fail(f"{self.role} transaction {reason}", error)

    async def _fail(self, what: str, error: BaseException) -> None:
        """-> failing: stop the producer; while still assigned the role is taken again after a pause, and
        after a fencing only once a rebalance proves it is still ours (kafka/role_state.py)."""
        log.warning("%s: %s; retrying from committed state in %.0f s", what, str(error) or type(error).__name__,
                    _RETRY_S)
        self.machine.failed(time.monotonic(), self.member.rebalances if isinstance(error, Fenced) else None)
        self._inactive()
        await self.sender.stop()

    def _inactive(self) -> None:
        self._active.clear()
        metrics.ROLE_ACTIVE.labels(self.role).set(0)

"""The commit pipeline of an exclusive role: one transaction per batch, in order, at most one in flight.

Each batch's output and the role's next input offset are one transaction (exactly-once processing).
A role may hand over batch N+1 while N's transaction still commits (:meth:`CommitPipeline.submit`):
N+1's transaction begins only once N's has committed, so nothing of N+1 is visible before N is. The
first failure of an activation is reported once, to the ``on_failure`` the role gave (its one
handler of a failed commit), and every later commit of that activation is refused without being
tried: all of them are redone from committed state by the next activation.

Example::

    commits = CommitPipeline(sender, group_id, tp, on_failure=role_failed)
    commits.reset()                                   # a new activation
    await commits.submit(out, next_offset=43)         # returns once N-1 committed and N has begun
    await commits.drain()                             # True if everything submitted committed
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from eventconfig.kafka.adapter import TopicPartition
from eventconfig.kafka.records import OutRecord
from eventconfig.kafka.transactions import Fenced, TransactionalSender, TransactionFailed

log = logging.getLogger(__name__)

Output = Mapping[str, Sequence[OutRecord]]


class CommitPipeline:
    """The transactions of one activation of a role, committed in order."""

    def __init__(self, sender: TransactionalSender, group_id: str, tp: TopicPartition,
                 on_failure: Callable[[TransactionFailed | Fenced, Any], Awaitable[None]]) -> None:
        self.sender, self.group_id, self.tp = sender, group_id, tp
        self._on_failure = on_failure
        self._inflight: asyncio.Task[bool] | None = None
        self.begun = 0  # transactions begun in this activation
        self.broken = False  # one of them failed: no later one is tried

    def reset(self) -> None:
        """A new activation (the previous one's commits are drained)."""
        assert self._inflight is None, "drain() before a new activation"
        self.begun, self.broken = 0, False

    async def commit(self, records: Output, next_offset: int | None, metadata: str = "", *,
                     batch: Any = None) -> bool:
        """Commit ``records`` and the input offset now (after the one in flight); False if it failed."""
        if not await self.submit(records, next_offset, metadata, batch=batch):
            return False
        return await self.drain()

    async def submit(self, records: Output, next_offset: int | None, metadata: str = "", *,
                     batch: Any = None, then: Callable[[], None] | None = None) -> bool:
        """Wait until the transaction in flight has committed, then begin this one in the background
        (``then`` runs once it committed; ``batch`` goes to ``on_failure`` if it fails). False, and
        nothing begun, when an earlier one of this activation failed."""
        if not await self.drain():
            return False
        self.begun += 1
        self._inflight = asyncio.create_task(self._commit(records, next_offset, metadata, batch, then),
                                             name=f"commit {self.sender.transactional_id}")
        return True

    async def drain(self) -> bool:
        """Wait for the transaction in flight; True if every transaction of this activation committed."""
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            try:
                await inflight
            except Exception:  # noqa: BLE001 - a bug; say so, and redo from committed state
                log.exception("a transaction failed unexpectedly")
                self.broken = True
        return not self.broken

    async def _commit(self, records: Output, next_offset: int | None, metadata: str, batch: Any,
                      then: Callable[[], None] | None) -> bool:
        offsets = {self.tp: (next_offset, metadata)} if next_offset is not None else None
        try:
            await self.sender.commit(records, offsets=offsets, group_id=self.group_id)
        except (Fenced, TransactionFailed) as exc:
            self.broken = True
            await self._on_failure(exc, batch)
            return False
        if then is not None:
            then()
        return True

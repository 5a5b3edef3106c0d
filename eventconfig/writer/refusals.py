"""Requests whose output the broker refuses for good, and how the writer isolates them (pure).

A transaction the broker refuses for good (:class:`~eventconfig.kafka.transactions.RecordRefused`,
e.g. a record over a topic's ``max.message.bytes``) would fail the same way on every redo. So its
requests are redone one per transaction; the one whose own transaction is refused is dead-lettered
in a minimal form (``Unproducible``), and skipped if even that is refused.

Example::

    refusals = Refusals()
    refusals.failed([7, 8, 9], "MessageSizeTooLarge")   # redo 7..9 one at a time
    refusals.batch_size(500)                              # 1 until 9 has committed
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


class Refusals:
    """Which requests to redo alone, and which ones' output the broker refused."""

    def __init__(self) -> None:
        # request offset -> why the broker refused its output (None: its dead letter was refused too)
        self.refused: dict[int, str | None] = {}
        self._isolate_below = 0  # requests before this offset are redone one per transaction
        self._isolating = False

    def batch_size(self, normal: int) -> int:
        """How many requests the next batch may hold."""
        return 1 if self._isolating else normal

    def failed(self, offsets: Sequence[int], error: str) -> None:
        """A transaction of the requests at ``offsets`` was refused: redo them one per transaction, or,
        if it held the output of a single request and nothing else, remember that request as the culprit
        so the redo dead-letters it."""
        if not offsets:
            return
        if len(offsets) == 1:
            # Refused again once it was only a dead letter: skip it without one.
            reason = None if offsets[0] in self.refused else error
            self.refused[offsets[0]] = reason
            log.error("the broker refused the output of one request; it goes to the DLQ" if reason else
                      "the broker refused the dead letter of a request too; it is skipped",
                      extra={"fields": {"offset": offsets[0], "error": error}})
        else:
            log.warning("the broker refused a transaction; redoing its requests one at a time",
                        extra={"fields": {"offsets": f"{offsets[0]}-{offsets[-1]}", "error": error}})
        self._isolate_below = max(self._isolate_below, offsets[-1] + 1)
        self._isolating = True

    def committed(self, offsets: Sequence[int]) -> None:
        """The requests at ``offsets`` committed: past the refused stretch, batches are normal again."""
        if offsets and offsets[-1] + 1 >= self._isolate_below:
            self._isolating = False
            self.refused = {}

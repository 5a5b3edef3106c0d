"""Which TrustGraph ids the translator answered lately, so each gets one answer (docs/design.md §13.4).

The writer may answer a read twice (a writer that takes over answers again the reads its predecessor
had not committed as answered, §6). TrustGraph's client takes the first answer to an id; a second
one would be read by whoever waits next with that id. So the translator passes on the first answer
to an id and drops the others within ``window_ms`` of it, measured on the response records' own
timestamps (deterministic across a take-over, which rebuilds this from the response topic). Pure.

Example::

    answered = AnsweredIds(window_ms=300_000)
    if answered.first(trustgraph_id, record.timestamp): publish(answer)
"""

from __future__ import annotations

from collections import OrderedDict


class AnsweredIds:
    """The ids answered within the window before the newest response seen, oldest first."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._at: OrderedDict[str, int] = OrderedDict()  # id -> timestamp of its first answer
        self._newest = 0

    def first(self, answer_id: str, timestamp_ms: int) -> bool:
        """Whether this is the first answer to ``answer_id`` within the window (and remember it)."""
        self._newest = max(self._newest, timestamp_ms)
        while self._at and next(iter(self._at.values())) < self._newest - self.window_ms:
            self._at.popitem(last=False)
        if answer_id in self._at:
            return False
        self._at[answer_id] = timestamp_ms
        return True

    def __len__(self) -> int:
        return len(self._at)

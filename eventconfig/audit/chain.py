"""Checking the history's hash chain, pure (docs/design.md §14.3; the format is :mod:`eventconfig.hashchain`).

The commit marker of each write carries the write's hash in its ``chain-head`` header, so the
compacted log keeps the head.
A record altered, inserted, dropped or reordered breaks a link, and so does a gap in the versions
(which are contiguous); :class:`ChainCheck` names the first version where that shows. An attacker who can write the topic can still re-seal a whole chain from a
point on: only the marker's head (in the log) and a head an auditor kept (:attr:`ChainReport.head`)
catch that.

Example::

    check = ChainCheck(marker=(version, head))       # the log's last commit marker
    for offset, value in history_records: check.feed(offset, value)
    report = check.finish()                          # report.first_bad is None when intact
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventconfig.codec import Codec, default_codec
from eventconfig.errors import CodecError
from eventconfig.hashchain import mutation_hash
from eventconfig.model import MAX_VERSION

ALTERED, INSERTED, DROPPED, REORDERED, UNCHAINED = "altered", "inserted", "dropped", "reordered", "unchained"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the chain does not hold: the version shown there, its offset, what kind."""

    version: int | None
    offset: int
    kind: str
    reason: str

    def describe(self) -> str:
        where = f"version {self.version}" if self.version is not None else "an unreadable record"
        at = f" (offset {self.offset})" if self.offset >= 0 else ""  # -1: found against the log's marker
        return f"{where}{at}: {self.kind}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    """What a walk of the history found: records read, the chain's first and last version, its head."""

    records: int
    first_chained: int | None  # the first version that carries a hash (older ones predate the chain)
    last_version: int | None
    head: str  # the hash of the last record: keep it, and compare it with a later report's chain
    first_bad: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def lines(self) -> list[str]:
        if self.first_bad is not None:
            return [f"FAILED: history chain broken at {self.first_bad.describe()}"]
        if self.first_chained is None:
            return [f"OK: {self.records} history records, none chained yet (written before the chain)"]
        return [f"OK: history chain intact from version {self.first_chained} to {self.last_version} "
                f"({self.records} records); head {self.last_version}:{self.head}"]

    def to_json(self) -> dict[str, Any]:
        bad = self.first_bad
        return {"ok": self.ok, "records": self.records, "first_chained": self.first_chained,
                "last_version": self.last_version, "head": self.head,
                "first_bad": None if bad is None else {"version": bad.version, "offset": bad.offset,
                                                       "kind": bad.kind, "message": bad.describe()}}


class ChainCheck:
    """Feed the history's records in offset order, then :meth:`finish`; stops looking at the first break."""

    def __init__(self, marker: tuple[int, str] | None = None, codec: Codec | None = None,
                 anchor: tuple[int, str] | None = None) -> None:
        """``marker``: the log's last commit marker (version, chain head), which the history's chain
        must reach with the same hash; None or an empty head when it has none. ``anchor``: a head an
        auditor kept from an earlier walk (version, hash), which the chain must pass through."""
        self._codec = codec or default_codec()
        self._marker = marker if marker and marker[1] else None
        self._anchor = anchor
        self._anchor_held = False
        self._records = 0
        self._first_chained: int | None = None
        self._last: tuple[int, str] | None = None  # (version, hash) of the last good record
        self._past_marker: tuple[int, int] | None = None  # the first version after the marker's, its offset
        self._at_marker: str | None = None  # the hash the history holds at the marker's version
        self._bad: ChainBreak | None = None

    def feed(self, offset: int, value: bytes | None) -> None:
        self._records += 1
        if self._bad is not None:
            self._reclassify(value)
            return
        try:
            if value is None:
                raise CodecError("the record has no value")
            mutation = self._codec.decode("Mutation", value)
        except CodecError as exc:
            after = self._last[0] + 1 if self._last else None
            self._break(after, offset, ALTERED, f"not a readable Mutation ({exc})")
            return
        self._check(offset, mutation)

    def _check(self, offset: int, m: Mapping[str, Any]) -> None:
        version, claimed = int(m["version"]), m["hash"]
        if not 0 <= version <= MAX_VERSION:
            self._break(version, offset, ALTERED, f"its version is outside 0..{MAX_VERSION}")
            return
        if self._last is not None and version > self._last[0] + 1:
            self._break(version, offset, DROPPED, f"follows version {self._last[0]}: versions {self._last[0] + 1} "
                                                  f"to {version - 1} are missing (versions are contiguous)")
            return
        if not claimed:
            if self._first_chained is not None:
                self._break(version, offset, UNCHAINED, "has no hash although the chain began at version "
                                                        f"{self._first_chained}")
            else:
                self._last = (version, "")
            return
        if mutation_hash(m) != claimed:
            self._break(version, offset, ALTERED, "its content does not match its hash")
            return
        if self._last is not None and version <= self._last[0]:
            self._break(version, offset, REORDERED if version < self._last[0] else INSERTED,
                        f"follows version {self._last[0]}")
            return
        if self._first_chained is not None and self._last is not None and m["prev_hash"] != self._last[1]:
            self._break(version, offset, DROPPED,
                        f"its prev_hash is not the hash of version {self._last[0]} before it "
                        "(a record dropped, inserted or moved in between)")
            return
        if self._first_chained is None:
            self._first_chained = version
        if self._anchor is not None and version == self._anchor[0]:
            if claimed != self._anchor[1]:
                self._break(version, offset, ALTERED, "its hash is not the anchored head kept for this version")
                return
            self._anchor_held = True
        self._last = (version, claimed)
        if self._marker is not None:
            if version == self._marker[0]:
                self._at_marker = claimed
            elif version > self._marker[0] and self._past_marker is None:
                self._past_marker = (version, offset)

    def _reclassify(self, value: bytes | None) -> None:
        """A link broken before a version gap is a drop, unless a missing version turns up later."""
        bad = self._bad
        if bad is None or bad.kind != DROPPED or bad.offset < 0 or value is None:
            return
        try:
            version = int(self._codec.decode("Mutation", value)["version"])
        except CodecError:
            return
        if self._last is not None and self._last[0] < version < (bad.version or 0):
            self._bad = ChainBreak(bad.version, bad.offset, REORDERED,
                                   f"version {version} comes after it (records out of order)")

    def _break(self, version: int | None, offset: int, kind: str, reason: str) -> None:
        self._bad = ChainBreak(version, offset, kind, reason)

    def finish(self) -> ChainReport:
        if self._bad is None and self._marker is not None:
            self._check_marker(*self._marker)
        if self._bad is None and self._anchor is not None and not self._anchor_held:
            self._break(self._anchor[0], -1, DROPPED, "the anchored version is not in the held history")
        last = self._last
        return ChainReport(self._records, self._first_chained, last[0] if last else None,
                           last[1] if last else "", self._bad)

    def _check_marker(self, version: int, head: str) -> None:
        if self._past_marker is not None:
            self._break(*self._past_marker, INSERTED, f"the log's last commit marker is version {version}: the "
                        "history continues past it (a record not written by the writer)")
        elif self._at_marker is None:
            last = self._last[0] if self._last else 0
            self._break(version, -1, DROPPED,
                        f"the log's last commit marker is version {version}, the history ends at version {last}")
        elif self._at_marker != head:
            self._break(version, -1, ALTERED, "its hash is not the chain head of the log's commit marker")

"""What a history request asks for, and whether the history topic still holds it (pure).

A :class:`HistoryQuery` filters mutations by workspace, type, key, version range and time range (all
bounds inclusive). :class:`HeldHistory` is what the topic still holds; :meth:`HeldHistory.require`
raises :class:`OutOfRetention` when a request needs versions that retention deleted, so the caller
never prints a silently partial answer.

Example::

    query = HistoryQuery(workspace="acme", type="prompt", from_version=10)
    held.require(version=query.from_version, time_ms=query.since_ms, purpose="history from version 10")
    shown = [m for m in map(query.select, mutations) if m is not None]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from eventconfig.audit.errors import OutOfRetention
from eventconfig.audit.records import Mutation, format_time


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of a history listing; None means "no filter". Type and key filters also trim changes."""

    workspace: str | None = None
    type: str | None = None
    key: str | None = None
    from_version: int | None = None
    to_version: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def select(self, mutation: Mutation) -> Mutation | None:
        """The mutation (with only the matching changes when filtering by type/key), or None."""
        if self.workspace is not None and mutation.workspace != self.workspace:
            return None
        if not _within(mutation.version, self.from_version, self.to_version):
            return None
        if not _within(mutation.timestamp_ms, self.since_ms, self.until_ms):
            return None
        if self.type is None and self.key is None:
            return mutation
        changes = tuple(c for c in mutation.changes
                        if (self.type is None or c.type == self.type) and (self.key is None or c.key == self.key))
        return replace(mutation, changes=changes) if changes else None

    def past_end(self, mutation: Mutation) -> bool:
        """True once the history (ordered by version) has gone beyond ``to_version``."""
        return self.to_version is not None and mutation.version > self.to_version

    @property
    def bounded_below(self) -> bool:
        return self.from_version is not None or self.since_ms is not None


def _within(value: int, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True)
class HeldHistory:
    """What the history topic holds now: its offsets and its first mutation (None when it holds none)."""

    beginning_offset: int
    end_offset: int
    first: Mutation | None

    @property
    def truncated(self) -> bool:
        """Retention (or delete-records) removed the start of the history."""
        if self.first is None:
            return self.beginning_offset > 0
        return self.first.version > 1

    def describe(self) -> str:
        if self.first is None:
            return (f"the history topic holds no mutations (records below offset {self.beginning_offset} "
                    "were deleted by retention)" if self.beginning_offset else "the history topic is empty")
        return f"the history topic starts at version {self.first.version} ({self.first.time})"

    def require(self, *, version: int | None = None, time_ms: int | None = None, purpose: str) -> None:
        """Raise OutOfRetention when ``purpose`` needs ``version`` (or mutations since ``time_ms``) and the
        topic no longer holds them. Versions before the first held one may share its millisecond, so a
        time equal to the first held mutation's time is out of retention too."""
        if not self.truncated:
            return
        first = self.first
        needs_older = (version is not None and (first is None or version < first.version)) or \
                      (time_ms is not None and (first is None or time_ms <= first.timestamp_ms))
        if not needs_older:
            return
        held = (f"the earliest mutation still held is version {first.version} at {first.time}"
                if first is not None else "no mutation is held any more")
        raise OutOfRetention(
            f"{purpose} needs history that retention has deleted: {held}. Ask for versions from "
            f"{first.version if first else 'the next write'} on, or raise the history topic's retention.ms "
            "(setting history_retention_ms, -1 keeps everything) to keep more next time.",
            first.version if first else None, first.timestamp_ms if first else None)


def describe_range(query: HistoryQuery) -> str:
    """``history from version 3 since 2026-...`` — the purpose text of an out-of-retention error."""
    parts = ["history"]
    if query.from_version is not None:
        parts.append(f"from version {query.from_version}")
    if query.since_ms is not None:
        parts.append(f"since {format_time(query.since_ms)}")
    return " ".join(parts)

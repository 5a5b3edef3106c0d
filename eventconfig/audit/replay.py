"""Folding history into answers (pure): the state as of a version or time, and the diff of two versions.

Both folds take mutations in version order and insist that versions are consecutive: a skipped or
repeated version raises :class:`HistoryGap` instead of producing a state that never existed. They
also stop by themselves: :meth:`Fold.feed` returns False at the first mutation past the requested
point, so a reader can stop reading there.

The state is an in-memory dict ``ItemKey -> Entry``. That is the simple and fast choice (a replay of
the whole history is one pass, no disk); its cost is memory proportional to the number of live keys
in the replayed workspaces (roughly 200 bytes plus the value per key). A temporary RocksDB would cap
memory for stores of many millions of keys; restrict the replay with ``workspace`` before that.

Example::

    state = replay_state(mutations, at_version=7)    # State(version=7, items={ItemKey: Entry(value, version)})
    diff = diff_versions(mutations, 3, 7)             # Diff(changes=(KeyChange(item, old, new), ...))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventconfig.audit.errors import HistoryGap, VersionNotFound
from eventconfig.audit.records import Mutation, format_time
from eventconfig.model import Entry, ItemKey


class Fold:
    """Consecutive-version bookkeeping shared by the folds; subclasses apply one mutation.

    Mutations at or below ``start_version`` are passed over, so a fold can be fed the history from its
    first record; the first one folded must be ``start_version + 1``.
    """

    def __init__(self, start_version: int, workspace: str | None) -> None:
        self.start_version = start_version
        self.version = start_version  # last version folded in (whatever its workspace)
        self.timestamp_ms: int | None = None  # time of that version, None before any
        self.workspace = workspace
        self.applied = 0  # mutations folded in

    def wants(self, mutation: Mutation) -> bool:
        """False once ``mutation`` is past the point this fold answers for."""
        raise NotImplementedError

    def feed(self, mutation: Mutation) -> bool:
        """Fold ``mutation`` in; False (and nothing folded) when it is past the requested point."""
        if mutation.version <= self.start_version:
            return True
        if not self.wants(mutation):
            return False
        if mutation.version != self.version + 1:
            problem = "repeats" if mutation.version <= self.version else "skips to"
            raise HistoryGap(f"the history {problem} version {mutation.version} after version {self.version} "
                             f"(offset {mutation.offset}); no state can be rebuilt across that point")
        self.version, self.timestamp_ms = mutation.version, mutation.timestamp_ms
        self.applied += 1
        if self.workspace is None or mutation.workspace == self.workspace:
            self._apply(mutation)
        return True

    def run(self, mutations: Iterable[Mutation]) -> None:
        """Feed ``mutations`` until one is past the requested point."""
        for mutation in mutations:
            if not self.feed(mutation):
                return

    def _apply(self, mutation: Mutation) -> None:
        raise NotImplementedError

    def _require(self, version: int) -> None:
        require_version(version, self.version)


def require_version(version: int, last: int) -> None:
    """VersionNotFound when ``version`` is past ``last``, the last version of the history."""
    if version > last:
        raise VersionNotFound(f"version {version} does not exist: the history ends at version {last}")


# --- state as of a version or a time ------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The store as of ``version``: every live item with the version at which it last changed."""

    version: int
    timestamp_ms: int | None
    items: dict[ItemKey, Entry] = field(default_factory=dict)

    def config(self, workspace: str) -> dict[str, dict[str, str]]:
        """``{type: {key: value}}`` of one workspace, sorted, as ``eventconfig dump`` prints it."""
        return self.workspaces().get(workspace, {})

    def workspaces(self) -> dict[str, dict[str, dict[str, str]]]:
        """``{workspace: {type: {key: value}}}``, sorted."""
        nested: dict[str, dict[str, dict[str, str]]] = {}
        for item in sorted(self.items):
            nested.setdefault(item.workspace, {}).setdefault(item.type, {})[item.key] = self.items[item].value
        return nested

    def describe(self) -> str:
        when = f" ({format_time(self.timestamp_ms)})" if self.timestamp_ms is not None else ""
        return f"state as of version {self.version}{when}: {len(self.items)} items"


class StateFold(Fold):
    """Replays from version 1 up to ``at_version`` or to the last mutation stamped at or before ``at_time_ms``.

    For a time, the state is the one after the last mutation that precedes, in version order, the first
    mutation stamped after ``at_time_ms``: always a state that existed, even if clocks went backwards.
    """

    def __init__(self, *, at_version: int | None = None, at_time_ms: int | None = None,
                 workspace: str | None = None) -> None:
        if (at_version is None) == (at_time_ms is None):
            raise ValueError("give exactly one of at_version and at_time_ms")
        super().__init__(0, workspace)
        self.at_version, self.at_time_ms = at_version, at_time_ms
        self.items: dict[ItemKey, Entry] = {}

    def wants(self, mutation: Mutation) -> bool:
        if self.at_version is not None:
            return mutation.version <= self.at_version
        assert self.at_time_ms is not None
        return mutation.timestamp_ms <= self.at_time_ms

    def _apply(self, mutation: Mutation) -> None:
        for change in mutation.changes:
            item = mutation.item(change)
            if change.value is None:
                self.items.pop(item, None)
            else:
                self.items[item] = Entry(change.value, mutation.version)

    def state(self) -> State:
        """The state folded so far (which is short of ``at_version`` if the history ended first)."""
        return State(self.version, self.timestamp_ms, self.items)

    def finish(self) -> State:
        """The state; VersionNotFound when the history ended before ``at_version``."""
        if self.at_version is not None:
            self._require(self.at_version)
        return self.state()


def replay_state(mutations: Iterable[Mutation], **point: Any) -> State:
    """The state as of ``at_version=N`` or ``at_time_ms=T`` (optionally of one ``workspace``)."""
    fold = StateFold(**point)
    fold.run(mutations)
    return fold.finish()


# --- diff of two versions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyChange:
    """One key that differs between two states: ``old``/``new`` None mean absent."""

    item: ItemKey
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "workspace": self.item.workspace, "type": self.item.type, "key": self.item.key,
                "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Diff:
    """The keys that differ between version ``from_version`` and version ``to_version``, in key order."""

    from_version: int
    to_version: int
    workspace: str | None
    changes: tuple[KeyChange, ...]

    def of_kind(self, kind: str) -> list[KeyChange]:
        return [c for c in self.changes if c.kind == kind]

    def to_json(self) -> dict[str, Any]:
        return {"from": self.from_version, "to": self.to_version, "workspace": self.workspace,
                **{kind: [c.to_json() for c in self.of_kind(kind)] for kind in ("added", "removed", "changed")}}


def diff_states(before: Mapping[ItemKey, str | None], after: Mapping[ItemKey, str | None]) -> list[KeyChange]:
    """Every key whose value differs between two ``{item: value}`` maps (None = absent), in key order."""
    changes = []
    for item in sorted(before.keys() | after.keys()):
        old, new = before.get(item), after.get(item)
        if old != new:
            changes.append(KeyChange(item, old, new))
    return changes


class DiffFold(Fold):
    """Folds only the mutations between the two versions, so the older history is not needed.

    A key's old value is the ``previous`` of its first change in the range, its new value the ``value``
    of its last one; keys that end where they started are not differences. ``from_version`` may be
    above ``to_version``: the diff is then read backwards (what undoing those mutations would change).
    """

    def __init__(self, from_version: int, to_version: int, workspace: str | None = None) -> None:
        super().__init__(min(from_version, to_version), workspace)
        self.from_version, self.to_version = from_version, to_version
        self.before: dict[ItemKey, str | None] = {}
        self.after: dict[ItemKey, str | None] = {}

    def wants(self, mutation: Mutation) -> bool:
        return mutation.version <= max(self.from_version, self.to_version)

    def _apply(self, mutation: Mutation) -> None:
        for change in mutation.changes:
            item = mutation.item(change)
            self.before.setdefault(item, change.previous)
            self.after[item] = change.value

    def finish(self) -> Diff:
        self._require(max(self.from_version, self.to_version))
        old, new = (self.before, self.after) if self.from_version <= self.to_version else (self.after, self.before)
        return Diff(self.from_version, self.to_version, self.workspace, tuple(diff_states(old, new)))


def diff_versions(mutations: Iterable[Mutation], from_version: int, to_version: int,
                  workspace: str | None = None) -> Diff:
    """The diff between two versions (either order) from mutations in version order."""
    fold = DiffFold(from_version, to_version, workspace)
    fold.run(mutations)
    return fold.finish()

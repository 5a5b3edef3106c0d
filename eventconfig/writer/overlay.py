"""Reads through writes the view has not applied yet: a view reader plus pending item changes.

The writer answers every request at the newest version, but its local view lags its own
transactions by a few milliseconds. The overlay puts the not-yet-applied changes (committed ones,
then the current batch's) on top of a view snapshot, so a read in a batch sees every write before it.

Example::

    reader = Overlay(store.snapshot(), {ItemKey("w", "t", "k"): Entry("v", 8)}, version=8)
    reader.get(ItemKey("w", "t", "k"))      # Entry("v", 8), even before the view applied version 8
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from eventconfig.model import Entry, ItemKey
from eventconfig.view.reader import ViewReader


class Overlay:
    """A :class:`ViewReader` of ``base`` with ``changes`` applied on top (None = deleted)."""

    def __init__(self, base: ViewReader, changes: Mapping[ItemKey, Entry | None], version: int) -> None:
        self.base = base
        self.changes = changes
        self.version = version

    def get(self, item: ItemKey) -> Entry | None:
        if item in self.changes:
            return self.changes[item]
        return self.base.get(item)

    def scan_type(self, workspace: str, type: str) -> Iterator[tuple[str, Entry]]:
        merged = {key: entry for key, entry in self.base.scan_type(workspace, type)}
        for item, entry in self.changes.items():
            if item.workspace == workspace and item.type == type:
                _set(merged, item.key, entry)
        return iter(sorted(merged.items()))

    def scan_workspace(self, workspace: str) -> Iterator[tuple[str, str, Entry]]:
        merged = {(t, k): entry for t, k, entry in self.base.scan_workspace(workspace)}
        for item, entry in self.changes.items():
            if item.workspace == workspace:
                _set(merged, (item.type, item.key), entry)
        return ((t, k, entry) for (t, k), entry in sorted(merged.items()))

    def scan_all_workspaces(self, type: str) -> Iterator[tuple[str, str, Entry]]:
        merged = {(w, k): entry for w, k, entry in self.base.scan_all_workspaces(type)}
        for item, entry in self.changes.items():
            if item.type == type:
                _set(merged, (item.workspace, item.key), entry)
        return ((w, k, entry) for (w, k), entry in sorted(merged.items()))


def _set(merged: dict, key: object, entry: Entry | None) -> None:  # type: ignore[type-arg]
    if entry is None:
        merged.pop(key, None)
    else:
        merged[key] = entry

"""Reads through writes the view has not applied yet: a view reader plus unapplied item changes.

The writer answers every request at the newest version, but its local view lags its own
transactions by a few milliseconds. The overlay puts the not-yet-applied changes (committed ones,
then the current batch's) on top of a view snapshot, so a read in a batch sees every write before it.

Example::

    reader = Overlay(store.snapshot(), {ItemKey("w", "t", "k"): Entry("v", 8)}, version=8)
    reader.get(ItemKey("w", "t", "k"))      # Entry("v", 8), even before the view applied version 8
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from eventconfig.model import Entry, ItemKey, Version
from eventconfig.view.reader import ViewReader


class Overlay:
    """A :class:`ViewReader` of ``base`` with ``changes`` applied on top (None = deleted)."""

    def __init__(self, base: ViewReader, changes: Mapping[ItemKey, Entry | None], version: Version) -> None:
        self.base = base
        self.changes = changes
        self.version = version

    def get(self, item: ItemKey) -> Entry | None:
        if item in self.changes:
            return self.changes[item]
        return self.base.get(item)

    def scan_type(self, workspace: str, type: str) -> Iterator[tuple[str, Entry]]:
        rows = self.base.scan_type(workspace, type)
        return iter(self._merge(rows, lambda i: i.workspace == workspace and i.type == type, lambda i: i.key))

    def scan_workspace(self, workspace: str) -> Iterator[tuple[str, str, Entry]]:
        rows = (((t, k), e) for t, k, e in self.base.scan_workspace(workspace))
        merged = self._merge(rows, lambda i: i.workspace == workspace, lambda i: (i.type, i.key))
        return ((t, k, entry) for (t, k), entry in merged)

    def scan_all_workspaces(self, type: str) -> Iterator[tuple[str, str, Entry]]:
        rows = (((w, k), e) for w, k, e in self.base.scan_all_workspaces(type))
        merged = self._merge(rows, lambda i: i.type == type, lambda i: (i.workspace, i.key))
        return ((w, k, entry) for (w, k), entry in merged)

    def _merge(self, rows: Iterable[tuple[Any, Entry]], matches: Callable[[ItemKey], bool],
               address: Callable[[ItemKey], Any]) -> list[tuple[Any, Entry]]:
        """The base's rows with the matching changes applied, sorted by address (= byte order)."""
        merged = dict(rows)
        for item, entry in self.changes.items():
            if matches(item):
                if entry is None:
                    merged.pop(address(item), None)
                else:
                    merged[address(item)] = entry
        return sorted(merged.items())

"""What every reader of the view gets: one version and the items as of that version, scanned in order.

Handlers are written against :class:`ViewReader`, so the same code runs over a RocksDB snapshot
(:class:`~eventconfig.view.store.ViewSnapshot`), the writer's in-memory overlay, or a plain dict in
pure tests (:class:`DictReader`). Orders are UTF-8 byte orders, the order of the wire contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from eventconfig.model import Entry, ItemKey, Version


@runtime_checkable
class ViewReader(Protocol):
    """A consistent state of the store: every scan and get sees the same ``version``."""

    @property
    def version(self) -> Version:
        """The last complete version in this state."""
        ...

    def get(self, item: ItemKey) -> Entry | None: ...

    def scan_type(self, workspace: str, type: str) -> Iterator[tuple[str, Entry]]:
        """(key, entry) of one type of one workspace, key ascending."""
        ...

    def scan_workspace(self, workspace: str) -> Iterator[tuple[str, str, Entry]]:
        """(type, key, entry) of one workspace, ascending."""
        ...

    def scan_all_workspaces(self, type: str) -> Iterator[tuple[str, str, Entry]]:
        """(workspace, key, entry) of one type across all workspaces (reserved ones too), ascending."""
        ...



def workspace_config(reader: ViewReader, workspace: str) -> dict[str, dict[str, str]]:
    """``{type: {key: value}}`` of one workspace as ``reader`` sees it: the ``config`` operation's shape."""
    config: dict[str, dict[str, str]] = {}
    for type_, key, entry in reader.scan_workspace(workspace):
        config.setdefault(type_, {})[key] = entry.value
    return config


class DictReader:
    """A :class:`ViewReader` over a plain dict, for pure tests and overlays.

    Example::

        reader = DictReader({ItemKey("ws", "t", "k"): Entry("v", 3)}, version=3)
        reader.get(ItemKey("ws", "t", "k"))        # Entry(value='v', version=3)
    """

    def __init__(self, items: Mapping[ItemKey, Entry] | None = None, version: int = 0) -> None:
        self.items: dict[ItemKey, Entry] = dict(items or {})
        self._version = Version(version)

    @property
    def version(self) -> Version:
        return self._version

    def get(self, item: ItemKey) -> Entry | None:
        return self.items.get(item)

    # Code-point order of str equals the byte order of their UTF-8 encodings, so sorted() is enough.
    def scan_type(self, workspace: str, type: str) -> Iterator[tuple[str, Entry]]:
        found = [(i.key, e) for i, e in self.items.items() if i.workspace == workspace and i.type == type]
        return iter(sorted(found, key=lambda pair: pair[0]))

    def scan_workspace(self, workspace: str) -> Iterator[tuple[str, str, Entry]]:
        found = [(i.type, i.key, e) for i, e in self.items.items() if i.workspace == workspace]
        return iter(sorted(found, key=lambda t: (t[0], t[1])))

    def scan_all_workspaces(self, type: str) -> Iterator[tuple[str, str, Entry]]:
        found = [(i.workspace, i.key, e) for i, e in self.items.items() if i.type == type]
        return iter(sorted(found, key=lambda t: (t[0], t[1])))


class ScanOnce:
    """A :class:`ViewReader` that reads each scan of ``base`` once and serves repeats from memory.

    The writer answers a batch of reads from one state; when a change reaches a fleet, many of them
    are the same ``getvalues`` (each subscriber that follows the type), and each would scan the same
    range of RocksDB again. Keep one only as long as ``base`` stays the same state (one batch).

    Example::

        reader = ScanOnce(snapshot)
        list(reader.scan_type("ws", "t")); list(reader.scan_type("ws", "t"))   # one RocksDB scan
    """

    def __init__(self, base: ViewReader) -> None:
        self.base = base
        self._scans: dict[tuple[str, ...], list[Any]] = {}

    @property
    def version(self) -> Version:
        return self.base.version

    def get(self, item: ItemKey) -> Entry | None:
        return self.base.get(item)

    def scan_type(self, workspace: str, type: str) -> Iterator[tuple[str, Entry]]:
        return self._once(("type", workspace, type), lambda: self.base.scan_type(workspace, type))

    def scan_workspace(self, workspace: str) -> Iterator[tuple[str, str, Entry]]:
        return self._once(("workspace", workspace), lambda: self.base.scan_workspace(workspace))

    def scan_all_workspaces(self, type: str) -> Iterator[tuple[str, str, Entry]]:
        return self._once(("all", type), lambda: self.base.scan_all_workspaces(type))

    def _once(self, scan: tuple[str, ...], read: Callable[[], Iterator[Any]]) -> Iterator[Any]:
        if scan not in self._scans:
            self._scans[scan] = list(read())
        return iter(self._scans[scan])

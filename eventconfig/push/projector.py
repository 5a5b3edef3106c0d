"""The projection, pure: the log records of one version -> at most one ``ConfigPush``.

A poke says "these (type, workspace) pairs changed up to version V". It also carries the changed
items themselves (``items``: workspace, type, key, value or null for a delete, version) while their
bytes stay within a cap, and the version of the poke before it (``previous_version``), so a
subscriber that holds those pairs applies the items without asking the writer, and can tell that it
missed nothing (docs/design.md §7). Over the cap, ``items`` is null: the subscriber fetches.

Reserved workspaces (``_`` prefix) never appear in ``changes`` or ``items``; a version that touches
only reserved workspaces gives no poke, unless it creates or deletes a workspace in
``__workspaces__``, which fills ``workspace_changes``. Consecutive pokes merge safely (latest version,
union of changes, the items in version order while they fit the cap).

Example::

    poke = project(records_of_version_7, previous_version=5, items_cap=65536)
    projector = Projector(items_cap=65536, previous_version=5)
    for record in records:
        poke = projector.add(record)     # a dict for ConfigPush after each qualifying commit marker
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventconfig.logrecords import LogRecord
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE, is_reserved

Poke = dict[str, Any]
Item = dict[str, Any]  # a ConfigValue: workspace, type, key, value (None: deleted), version

DEFAULT_ITEMS_CAP = 64 * 1024


def item_bytes(item: Item) -> int:
    """What an item counts against the cap: the UTF-8 bytes of its names and value."""
    return sum(len(item[f].encode()) for f in ("workspace", "type", "key")) + len((item["value"] or "").encode())


def project(records: Sequence[LogRecord], previous_version: int | None,
            items_cap: int = DEFAULT_ITEMS_CAP) -> Poke | None:
    """The poke of one version: ``records`` are its items, then its commit marker (last).

    ``previous_version`` is the version of the poke before it (0: none ever; None: unknown, which
    makes every subscriber fetch what it holds). ``items_cap`` 0 carries no items at all."""
    *changed, marker = records
    version = marker.version
    changes: dict[str, set[str]] = {}
    items: list[Item] = []
    created: list[str] = []
    deleted: list[str] = []
    for record in changed:
        item = record.item
        if not is_reserved(item.workspace):
            changes.setdefault(item.type, set()).add(item.workspace)
            items.append({"workspace": item.workspace, "type": item.type, "key": item.key, "value": record.value,
                          "version": version, "if_version": None})
        if item.workspace == WORKSPACES_WORKSPACE and item.type == WORKSPACE_TYPE:
            (created if record.value is not None else deleted).append(item.key)
    if not changes and not created and not deleted:
        return None
    lifecycle = {"created": _unique(created), "deleted": _unique(deleted)} if created or deleted else None
    return {"version": version, "changes": {t: sorted(ws) for t, ws in sorted(changes.items())},
            "workspace_changes": lifecycle, "items": _capped(items, items_cap), "previous_version": previous_version}


class Projector:
    """Collects the records of the version being read; releases its poke at the commit marker and
    remembers its version as the next poke's ``previous_version``."""

    def __init__(self, items_cap: int = DEFAULT_ITEMS_CAP, previous_version: int | None = 0) -> None:
        self.items_cap = items_cap
        self.previous_version = previous_version
        self._records: list[LogRecord] = []

    def add(self, record: LogRecord) -> Poke | None:
        self._records.append(record)
        if not record.is_marker:
            return None
        poke = project(self._records, self.previous_version, self.items_cap)
        self._records = []
        if poke is not None:
            self.previous_version = poke["version"]
        return poke


def merge(pokes: Sequence[Poke], items_cap: int = DEFAULT_ITEMS_CAP) -> Poke:
    """One poke covering consecutive ones: the latest version, the union of their changes, the
    ``previous_version`` of the first, and their items (the latest of each key) while every poke
    carried its items and the result fits the cap; otherwise no items (subscribers fetch)."""
    changes: dict[str, set[str]] = {}
    created: list[str] = []
    deleted: list[str] = []
    latest: dict[tuple[str, str, str], Item] | None = {}
    for poke in pokes:
        for type_, workspaces in poke["changes"].items():
            changes.setdefault(type_, set()).update(workspaces)
        if poke["workspace_changes"]:
            created += poke["workspace_changes"]["created"]
            deleted += poke["workspace_changes"]["deleted"]
        if latest is not None and poke.get("items") is None:
            latest = None
        if latest is not None:
            for item in poke["items"]:
                key = (item["workspace"], item["type"], item["key"])
                latest.pop(key, None)  # re-inserted last: items stay in the order of their versions
                latest[key] = item
    lifecycle = {"created": _unique(created), "deleted": _unique(deleted)} if created or deleted else None
    items = None if latest is None else _capped(list(latest.values()), items_cap)
    return {"version": pokes[-1]["version"], "changes": {t: sorted(ws) for t, ws in sorted(changes.items())},
            "workspace_changes": lifecycle, "items": items, "previous_version": pokes[0].get("previous_version")}


def _capped(items: list[Item], cap: int) -> list[Item] | None:
    """``items`` when they fit ``cap`` bytes (an empty list always fits), else None."""
    if not items:
        return items
    if cap <= 0 or sum(map(item_bytes, items)) > cap:
        return None
    return items


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))

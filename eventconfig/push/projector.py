"""The projection, pure: the log records of one version -> at most one ``ConfigPush``.

A poke says "these (type, workspace) pairs changed up to version V; refetch them". Reserved
workspaces (``_`` prefix) never appear in ``changes``; a version that touches only reserved
workspaces gives no poke, unless it creates or deletes a workspace in ``__workspaces__``, which fills
``workspace_changes``. Consecutive pokes merge safely (latest version, union of changes).

Example::

    projector = Projector()
    for record in records:
        poke = projector.add(record)     # a dict for ConfigPush after each qualifying commit marker
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventconfig.logrecords import LogRecord
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE, is_reserved

Poke = dict[str, Any]


class Projector:
    """Collects the items of the version being read; releases its poke at the commit marker."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._changes: dict[str, set[str]] = {}
        self._created: list[str] = []
        self._deleted: list[str] = []

    def add(self, record: LogRecord) -> Poke | None:
        if record.is_marker:
            poke = self._poke(record.version)
            self._reset()
            return poke
        item = record.item
        if not is_reserved(item.workspace):
            self._changes.setdefault(item.type, set()).add(item.workspace)
        if item.workspace == WORKSPACES_WORKSPACE and item.type == WORKSPACE_TYPE:
            (self._created if record.value is not None else self._deleted).append(item.key)
        return None

    def _poke(self, version: int) -> Poke | None:
        if not self._changes and not self._created and not self._deleted:
            return None
        lifecycle = {"created": _unique(self._created), "deleted": _unique(self._deleted)}
        return {"version": version, "changes": {t: sorted(ws) for t, ws in sorted(self._changes.items())},
                "workspace_changes": lifecycle if self._created or self._deleted else None}


def merge(pokes: Sequence[Poke]) -> Poke:
    """One poke covering consecutive ones: the latest version and the union of their changes."""
    changes: dict[str, set[str]] = {}
    created: list[str] = []
    deleted: list[str] = []
    for poke in pokes:
        for type_, workspaces in poke["changes"].items():
            changes.setdefault(type_, set()).update(workspaces)
        if poke["workspace_changes"]:
            created += poke["workspace_changes"]["created"]
            deleted += poke["workspace_changes"]["deleted"]
    lifecycle = {"created": _unique(created), "deleted": _unique(deleted)} if created or deleted else None
    return {"version": pokes[-1]["version"], "changes": {t: sorted(ws) for t, ws in sorted(changes.items())},
            "workspace_changes": lifecycle}


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))

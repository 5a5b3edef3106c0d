"""Comparing the history-derived state with a log-derived view, key by key and version by version (pure).

The history topic and the log topic are written in the same transactions, so a replay of the history
up to version V and a view of the log at version V must hold the same items, each with the same value
and the same last-changed version. :func:`compare` lists every way they do not.

Example::

    report = compare(history_state.items, history_state.version, view_items, view_version, history_last)
    if not report.ok: print("\\n".join(report.lines()))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eventconfig.model import Entry, ItemKey

MISSING, EXTRA, VALUE, VERSION, VIEW_VERSION = "missing", "extra", "value", "version", "view-version"


@dataclass(frozen=True, slots=True)
class Difference:
    """One inconsistency; ``history``/``view`` are what each side holds (None = absent)."""

    kind: str
    item: ItemKey | None
    history: Entry | int | None
    view: Entry | int | None

    def describe(self) -> str:
        if self.kind == VIEW_VERSION:
            return f"view version {self.view} != history version {self.history}"
        assert self.item is not None and (self.history is None or isinstance(self.history, Entry))
        assert self.view is None or isinstance(self.view, Entry)
        name = f"{self.item.workspace}/{self.item.type}/{self.item.key}"
        if self.kind == MISSING:
            return f"missing in the view: {name} = {_show(self.history)}"
        if self.kind == EXTRA:
            return f"extra in the view: {name} = {_show(self.view)}"
        if self.kind == VALUE:
            return f"value differs: {name}: history {_show(self.history)}, view {_show(self.view)}"
        return f"version differs: {name}: history v{_version(self.history)}, view v{_version(self.view)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "item": list(self.item) if self.item else None,
                "history": _json(self.history), "view": _json(self.view), "message": self.describe()}


def _show(entry: Entry | int | None) -> str:
    assert isinstance(entry, Entry)
    return f"{entry.value!r} (v{entry.version})"


def _version(entry: Entry | int | None) -> int:
    assert isinstance(entry, Entry)
    return entry.version


def _json(side: Entry | int | None) -> Any:
    return {"value": side.value, "version": side.version} if isinstance(side, Entry) else side


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verify: the versions compared, how many items, every difference, and notes."""

    history_version: int  # the version of the replayed history state that was compared
    view_version: int
    history_last_version: int  # the last version the history held when read
    view_items: int
    differences: tuple[Difference, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        head = (f"view at version {self.view_version} ({self.view_items} items) vs history at version "
                f"{self.history_version} (history ends at {self.history_last_version})")
        counts = {kind: sum(d.kind == kind for d in self.differences)
                  for kind in (VIEW_VERSION, MISSING, EXTRA, VALUE, VERSION)}
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        verdict = "OK: consistent" if self.ok else f"FAILED: {len(self.differences)} differences ({summary})"
        return [head, *(f"note: {n}" for n in self.notes), *(f"  {d.describe()}" for d in self.differences), verdict]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "history_version": self.history_version, "view_version": self.view_version,
                "history_last_version": self.history_last_version, "view_items": self.view_items,
                "notes": list(self.notes), "differences": [d.to_json() for d in self.differences]}


def compare(history: Mapping[ItemKey, Entry], history_version: int, view: Iterable[tuple[ItemKey, Entry]],
            view_version: int, history_last_version: int, *, view_may_lag: bool = False,
            notes: Iterable[str] = ()) -> VerifyReport:
    """Every difference between the history state (at ``history_version``) and the view.

    ``history_version`` is normally the view's version; it is lower only when the history ends before
    the view. A view behind the history's end is a difference unless ``view_may_lag`` (the view was
    just caught up and writes landed since).
    """
    differences: list[Difference] = []
    if view_version != history_version or (history_last_version > view_version and not view_may_lag):
        differences.append(Difference(VIEW_VERSION, None, max(history_version, history_last_version), view_version))
    remaining = dict(history)
    count = 0
    for item, entry in view:
        count += 1
        expected = remaining.pop(item, None)
        if expected is None:
            differences.append(Difference(EXTRA, item, None, entry))
        elif expected.value != entry.value:
            differences.append(Difference(VALUE, item, expected, entry))
        elif expected.version != entry.version:
            differences.append(Difference(VERSION, item, expected, entry))
    differences.extend(Difference(MISSING, item, entry, None) for item, entry in remaining.items())
    order = {VIEW_VERSION: 0}
    differences.sort(key=lambda d: (order.get(d.kind, 1), d.item or ItemKey("", "", "")))
    return VerifyReport(history_version, view_version, history_last_version, count, tuple(differences),
                        tuple(notes))

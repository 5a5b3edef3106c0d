"""What a ConfigSubscriber holds, and what a poke asks of it: pure, no I/O (docs/design.md §7).

The subscriber holds the whole ``{key: value}`` of every (type, workspace) pair it follows: the
types its handlers registered for, in every workspace (fetched at start), and the pairs it fetched
one by one for handlers without types. A poke that carries its items and follows the subscriber's
version without a gap changes the held maps in place, with no request; a poke without items, a
pair not held, or a gap (the poke's ``previous_version`` is newer than what the subscriber has seen:
a poke was missed) makes it fetch.

Example::

    held = HeldConfig()
    held.load_type("prompt", [("acme", "system", "hi")], version=7)
    step = plan(poke, held, version=7, wants=lambda t: t == "prompt")
    for pair, items in step.apply.items():
        held.apply(pair, items, poke["version"])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventconfig.model import is_reserved

Pair = tuple[str, str]  # (type, workspace)
Config = dict[str, dict[str, str]]
Item = Mapping[str, Any]  # a ConfigValue of a poke: workspace, type, key, value (None: deleted), version


@dataclass
class PokeStep:
    """What one poke asks of a subscriber, in this order: refetch, fetch, apply, then deliver."""

    refetch_all: bool = False  # a poke was missed: fetch everything held again
    fetch: list[Pair] = field(default_factory=list)  # pairs to fetch (no items for them, or not held)
    apply: dict[Pair, list[Item]] = field(default_factory=dict)  # items to apply to held pairs
    deliver: list[Pair] = field(default_factory=list)  # pairs whose handlers are called afterwards


class HeldConfig:
    """The maps a subscriber holds, each with the version it reflects."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, dict[str, str]]] = {}  # type -> workspace -> {key: value}
        self._types: dict[str, int] = {}  # types held in every workspace -> version read
        self._pairs: dict[Pair, int] = {}  # pairs fetched alone or changed since their type was read -> version

    def holds(self, pair: Pair) -> bool:
        return pair[0] in self._types or pair in self._pairs

    def version_of(self, pair: Pair) -> int:
        return self._pairs.get(pair, self._types.get(pair[0], 0))

    @property
    def types(self) -> list[str]:
        """Types held in every workspace."""
        return sorted(self._types)

    @property
    def lone_pairs(self) -> list[Pair]:
        """Pairs held on their own (their type is not held everywhere)."""
        return sorted(p for p in self._pairs if p[0] not in self._types)

    def load_type(self, type_: str, items: Iterable[tuple[str, str, str]], version: int) -> set[str]:
        """Hold ``type_`` in every workspace as read at ``version`` (``(workspace, key, value)``
        items); returns the workspaces whose map differs from what was held."""
        fresh: dict[str, dict[str, str]] = {}
        for workspace, key, value in items:
            fresh.setdefault(workspace, {})[key] = value
        old = self._values.get(type_, {})
        changed = {ws for ws in fresh.keys() | old.keys() if fresh.get(ws, {}) != old.get(ws, {})}
        self._values[type_] = fresh
        self._types[type_] = version
        self._pairs = {p: v for p, v in self._pairs.items() if p[0] != type_}
        return changed

    def load_pair(self, pair: Pair, values: Mapping[str, str], version: int) -> bool:
        """Hold one pair as read at ``version``; True when it differs from what was held."""
        type_, workspace = pair
        old = self._values.get(type_, {}).get(workspace, {})
        self._values.setdefault(type_, {})[workspace] = dict(values)
        self._pairs[pair] = max(version, self.version_of(pair))
        return old != values

    def drop_type(self, type_: str) -> None:
        """Stop holding a type everywhere (its fetch failed for good): pokes then fetch its pairs."""
        self._types.pop(type_, None)
        self._values.pop(type_, None)
        self._pairs = {p: v for p, v in self._pairs.items() if p[0] != type_}

    def drop_pair(self, pair: Pair) -> None:
        """Stop holding one pair (its fetch failed for good): its next poke fetches it again. Its
        type, if held everywhere, is held from now on as the pairs it has."""
        type_, workspace = pair
        if type_ in self._types:
            version = self._types.pop(type_)
            for other in self._values.get(type_, {}):
                self._pairs.setdefault((type_, other), version)
        self._pairs.pop(pair, None)
        self._values.get(type_, {}).pop(workspace, None)

    def apply(self, pair: Pair, items: Iterable[Item], version: int) -> None:
        """Apply a held pair's items newer than the map (older ones it already reflects)."""
        since = self.version_of(pair)
        if version <= since:
            return
        type_, workspace = pair
        values = self._values.setdefault(type_, {}).setdefault(workspace, {})
        for item in items:
            if item["version"] <= since:
                continue
            if item["value"] is None:
                values.pop(item["key"], None)
            else:
                values[item["key"]] = item["value"]
        self._pairs[pair] = version

    def workspaces(self, type_: str) -> list[str]:
        """Workspaces where ``type_`` has a held map."""
        return sorted(self._values.get(type_, {}))

    def config(self, workspace: str, types: Iterable[str]) -> Config:
        """``{type: {key: value}}`` of the held ``types`` in ``workspace`` (copies)."""
        return {t: dict(self._values.get(t, {}).get(workspace, {})) for t in types}


def plan(poke: Mapping[str, Any], held: HeldConfig, version: int, wants: Callable[[str], bool]) -> PokeStep:
    """What a poke newer than ``version`` (what the subscriber has seen) asks of it."""
    listed = [(type_, ws) for type_, workspaces in sorted(poke["changes"].items()) if wants(type_)
              for ws in workspaces if not is_reserved(ws)]
    previous, items = poke.get("previous_version"), poke.get("items")
    step = PokeStep(deliver=listed)
    if (previous is None and items is not None) or (previous is not None and previous > version):
        step.refetch_all = True
        step.fetch = [p for p in listed if not held.holds(p)]
    elif items is None:
        step.fetch = listed
    else:
        by_pair: dict[Pair, list[Item]] = {}
        for item in items:
            by_pair.setdefault((item["type"], item["workspace"]), []).append(item)
        for pair in listed:
            if held.holds(pair):
                step.apply[pair] = by_pair.get(pair, [])
            else:
                step.fetch.append(pair)
    return step

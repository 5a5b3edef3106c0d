"""What a subscriber does with a poke (docs/design.md §7), pure: apply its items, fetch, or refetch."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventconfig.client.held import HeldConfig, plan
from eventconfig.logrecords import LogRecord
from eventconfig.model import MARKER_KEY, ItemKey
from eventconfig.push.projector import Projector


def wants_all(type_: str) -> bool:
    return True


def poke(version: int, previous: int | None, items: list[tuple[str, str, str, str | None]] | None,
         changes: dict[str, list[str]] | None = None) -> dict:
    carried = None if items is None else [{"workspace": w, "type": t, "key": k, "value": v, "version": version}
                                          for w, t, k, v in items]
    if changes is None:
        changes = {}
        for w, t, _, _ in items or ():
            if w not in changes.setdefault(t, []):
                changes[t].append(w)
    return {"version": version, "changes": changes, "workspace_changes": None, "items": carried,
            "previous_version": previous}


def test_a_poke_with_items_that_follows_the_last_one_is_applied_without_a_fetch():
    held = HeldConfig()
    held.load_type("prompt", [("w", "a", "1"), ("w", "b", "2")], version=5)
    step = plan(poke(6, 5, [("w", "prompt", "a", "new"), ("w", "prompt", "b", None), ("_r", "prompt", "x", "y")]),
                held, 5, wants_all)
    assert not step.refetch_all and step.fetch == [] and step.deliver == [("prompt", "w")]
    for pair, items in step.apply.items():
        held.apply(pair, items, 6)
    assert held.config("w", ["prompt"]) == {"prompt": {"a": "new"}}


def test_a_poke_whose_previous_version_is_newer_than_what_was_seen_means_a_missed_poke():
    held = HeldConfig()
    held.load_type("prompt", [], version=5)
    assert plan(poke(9, 7, [("w", "prompt", "a", "1")]), held, 5, wants_all).refetch_all
    assert not plan(poke(9, 5, [("w", "prompt", "a", "1")]), held, 5, wants_all).refetch_all
    assert not plan(poke(9, 3, [("w", "prompt", "a", "1")]), held, 5, wants_all).refetch_all, \
        "a poke before what was fetched is covered by the fetch"
    assert plan(poke(9, None, [("w", "prompt", "a", "1")]), held, 5, wants_all).refetch_all, "unknown: refetch"


def test_without_items_or_for_a_pair_not_held_the_subscriber_fetches():
    held = HeldConfig()
    held.load_type("prompt", [], version=5)
    over_cap = plan(poke(6, 5, None, {"prompt": ["w"], "flow": ["v"]}), held, 5, wants_all)
    assert over_cap.fetch == [("flow", "v"), ("prompt", "w")] and not over_cap.apply
    older_generation = plan(poke(6, None, None, {"prompt": ["w"]}), held, 5, wants_all)
    assert older_generation.fetch == [("prompt", "w")] and not older_generation.refetch_all
    not_held = plan(poke(6, 5, [("w", "prompt", "a", "1"), ("v", "flow", "f", "1")]), held, 5, wants_all)
    assert not_held.fetch == [("flow", "v")] and list(not_held.apply) == [("prompt", "w")]
    typed = plan(poke(6, 5, [("v", "flow", "f", "1")]), held, 5, lambda t: t == "prompt")
    assert typed.fetch == [] and typed.deliver == [], "a type no handler wants is ignored"


def test_items_older_than_a_fetched_map_are_not_applied_again():
    held = HeldConfig()
    held.load_pair(("prompt", "w"), {"a": "v9"}, version=9)
    held.apply(("prompt", "w"), [{"key": "a", "value": "v7", "version": 7}], 7)
    assert held.config("w", ["prompt"]) == {"prompt": {"a": "v9"}}
    held.apply(("prompt", "w"), [{"key": "a", "value": "v8", "version": 8}, {"key": "b", "value": "v10",
                                                                            "version": 10}], 10)
    assert held.config("w", ["prompt"]) == {"prompt": {"a": "v9", "b": "v10"}}


def test_a_pair_whose_fetch_failed_for_good_is_no_longer_held_but_the_rest_of_its_type_is():
    held = HeldConfig()
    held.load_type("big", [("w", "k", "1"), ("v", "k", "2")], version=3)
    held.drop_pair(("big", "w"))
    assert not held.holds(("big", "w")) and held.holds(("big", "v")) and not held.holds(("big", "new"))
    assert held.config("v", ["big"]) == {"big": {"k": "2"}}


def test_reloading_a_type_reports_the_workspaces_that_differ():
    held = HeldConfig()
    held.load_type("t", [("w", "k", "1"), ("v", "k", "1")], version=1)
    assert held.load_type("t", [("w", "k", "1"), ("x", "k", "1")], version=4) == {"v", "x"}


names = st.sampled_from(["w", "v", "_r"])
version_items = st.lists(st.tuples(names, st.sampled_from(["a", "b"]), st.sampled_from("xyz"),
                                   st.one_of(st.none(), st.sampled_from(["1", "22", "333"]))), max_size=3)


@given(st.lists(version_items, min_size=1, max_size=12), st.integers(min_value=0, max_value=40),
       st.lists(st.booleans(), max_size=12))
def test_a_subscriber_converges_whatever_pokes_it_misses_and_whatever_the_cap(writes, cap, missed):
    """Type ``a`` is held everywhere (a typed handler); ``b`` pair by pair (an untyped one). Whichever
    pokes are lost (not the last), the held maps end equal to the store."""
    projector, pokes, store, states = Projector(cap, 0), [], {}, {0: {}}
    for version, items in enumerate(writes, start=1):
        for w, t, k, v in items:
            record = LogRecord(ItemKey(w, t, k), v, version)
            store.pop((w, t, k), None) if v is None else store.__setitem__((w, t, k), v)
            projector.add(record)
        states[version] = dict(store)
        if (made := projector.add(LogRecord(MARKER_KEY, "", version))) is not None:
            pokes.append(made)

    def read(version: int, type_: str, workspace: str | None = None) -> list[tuple[str, str, str]]:
        return [(w, k, v) for (w, t, k), v in sorted(states[version].items())
                if t == type_ and workspace in (None, w)]

    held, seen = HeldConfig(), 0
    held.load_type("a", read(0, "a"), 0)
    for index, p in enumerate(pokes):
        if index < len(pokes) - 1 and index < len(missed) and missed[index]:
            continue
        version = p["version"]
        step = plan(p, held, seen, wants_all)
        if step.refetch_all:
            for type_ in held.types:
                held.load_type(type_, read(version, type_), version)
            for pair in held.lone_pairs:
                held.load_pair(pair, {k: v for _, k, v in read(version, *pair)}, version)
        for pair in step.fetch:
            held.load_pair(pair, {k: v for _, k, v in read(version, *pair)}, version)
        for pair, items in step.apply.items():
            held.apply(pair, items, version)
        seen = version
    final = states[len(writes)]
    for w in ("w", "v"):
        assert held.config(w, ["a"]) == {"a": {k: v for (ws, t, k), v in final.items() if (ws, t) == (w, "a")}}
        if held.holds(("b", w)):
            assert held.config(w, ["b"]) == {"b": {k: v for (ws, t, k), v in final.items() if (ws, t) == (w, "b")}}

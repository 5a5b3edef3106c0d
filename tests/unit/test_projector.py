"""The projection of log records to pokes, as a specification (docs/design.md §7)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventconfig.codec import default_codec
from eventconfig.logrecords import LogRecord
from eventconfig.model import MARKER_KEY, ItemKey
from eventconfig.push.projector import Projector, item_bytes, merge

codec = default_codec()


def write(version: int, *items: tuple[str, str, str, str | None]) -> list[LogRecord]:
    """The log records of one write: its items, then the commit marker."""
    return [LogRecord(ItemKey(w, t, k), v, version) for w, t, k, v in items] + [LogRecord(MARKER_KEY, "", version)]


def project(*writes: list[LogRecord], cap: int = 64 * 1024, previous: int | None = 0) -> list[dict]:
    projector = Projector(cap, previous)
    return [poke for records in writes for r in records if (poke := projector.add(r)) is not None]


def item(version: int, ws: str, type_: str, key: str, value: str | None) -> dict:
    return {"workspace": ws, "type": type_, "key": key, "value": value, "version": version, "if_version": None}


def test_one_poke_per_version_with_the_types_and_workspaces_it_touched_and_its_items():
    pokes = project(write(7, ("w", "t1", "a", "1"), ("w", "t1", "b", "2"), ("w", "t2", "c", "3"), ("v", "t1", "d", "4")))
    assert pokes == [{"version": 7, "changes": {"t1": ["v", "w"], "t2": ["w"]}, "workspace_changes": None,
                      "items": [item(7, "w", "t1", "a", "1"), item(7, "w", "t1", "b", "2"), item(7, "w", "t2", "c", "3"),
                                item(7, "v", "t1", "d", "4")],
                      "previous_version": 0}]


def test_deletes_count_as_changes_even_of_missing_keys_and_carry_a_null_value():
    [poke] = project(write(3, ("w", "t", "gone", None)))
    assert poke["changes"] == {"t": ["w"]} and poke["items"] == [item(3, "w", "t", "gone", None)]


def test_reserved_workspaces_never_appear_and_reserved_only_versions_give_no_poke():
    pokes = project(write(1, ("__template__", "t", "k", "v")), write(2, ("_x", "t", "k", "v"), ("w", "t", "k", "v")))
    assert [(p["version"], p["changes"], p["items"]) for p in pokes] == [(2, {"t": ["w"]}, [item(2, "w", "t", "k", "v")])]


def test_a_version_without_items_gives_no_poke():
    assert project(write(1)) == []


def test_each_poke_names_the_version_of_the_poke_before_it():
    pokes = project(write(4, ("w", "t", "k", "1")), write(5, ("_x", "t", "k", "v")), write(6, ("w", "t", "k", "2")),
                    previous=2)
    assert [(p["previous_version"], p["version"]) for p in pokes] == [(2, 4), (4, 6)], "5 gave no poke: 6 follows 4"


def test_workspace_lifecycle_fills_workspace_changes_and_carries_no_reserved_items():
    pokes = project(write(4, ("__workspaces__", "workspace", "acme", '{"enabled": true}')),
                    write(5, ("__workspaces__", "workspace", "acme", None)))
    assert pokes == [
        {"version": 4, "changes": {}, "workspace_changes": {"created": ["acme"], "deleted": []}, "items": [],
         "previous_version": 0},
        {"version": 5, "changes": {}, "workspace_changes": {"created": [], "deleted": ["acme"]}, "items": [],
         "previous_version": 4}]


def test_items_of_an_unfinished_version_wait_for_its_marker():
    projector = Projector()
    assert projector.add(LogRecord(ItemKey("w", "t", "k"), "v", 9)) is None
    assert projector.add(LogRecord(MARKER_KEY, "", 9))["changes"] == {"t": ["w"]}


def test_items_over_the_cap_are_left_out_and_the_changes_stay():
    big = write(8, ("w", "t", "k", "x" * 100), ("w", "u", "k", "y"))
    assert item_bytes(item(8, "w", "t", "k", "x" * 100)) == 103
    [fits] = project(big, cap=103 + 3 + 1)
    [over] = project(big, cap=103 + 3)
    assert len(fits["items"]) == 2
    assert over["items"] is None and over["changes"] == {"t": ["w"], "u": ["w"]}
    assert project(big, cap=0)[0]["items"] is None, "cap 0: never any items"


def test_merging_keeps_the_latest_version_the_union_of_changes_the_first_previous_and_the_latest_items():
    pokes = project(write(1, ("w", "a", "k", "1")), write(2, ("v", "a", "k", "2"), ("w", "b", "k", "3")),
                    write(3, ("__workspaces__", "workspace", "n", "{}"), ("w", "a", "k", None)), previous=0)
    assert merge(pokes) == {"version": 3, "changes": {"a": ["v", "w"], "b": ["w"]},
                            "workspace_changes": {"created": ["n"], "deleted": []}, "previous_version": 0,
                            "items": [item(2, "v", "a", "k", "2"), item(2, "w", "b", "k", "3"),
                                      item(3, "w", "a", "k", None)]}


def test_a_merge_drops_the_items_when_one_poke_had_none_or_the_union_is_over_the_cap():
    small = project(write(1, ("w", "a", "k", "1")), write(2, ("w", "a", "j", "2")), cap=7)
    assert [p["items"] is not None for p in small] == [True, True]
    assert merge(small, 7)["items"] is None, "each fitted, together they do not"
    mixed = project(write(1, ("w", "a", "k", "1")), write(2, ("w", "a", "j", "x" * 50)), cap=10)
    assert merge(mixed, 1000)["items"] is None, "the second poke had no items: the merge cannot have them"


def test_pokes_with_items_round_trip_through_avro():
    [poke] = project(write(5, ("w", "t", "k", "v"), ("w", "t", "gone", None)), previous=3)
    assert codec.decode("ConfigPush", codec.encode("ConfigPush", poke)) == poke


names = st.sampled_from(["w", "v", "_r", "__workspaces__"])
writes = st.lists(st.lists(st.tuples(names, st.sampled_from(["a", "b", "workspace"]), st.sampled_from("xyz"),
                                     st.one_of(st.none(), st.text(max_size=8))), max_size=4), min_size=1, max_size=8)


@given(writes, st.integers(min_value=0, max_value=120))
def test_a_merged_poke_changes_a_held_state_like_its_parts_in_order(batches, cap):
    """Applying the merge's items (when it has them) gives what applying every poke's items gives."""
    pokes = project(*[write(v + 1, *items) for v, items in enumerate(batches)], cap=cap)
    if not pokes:
        return
    merged = merge(pokes, cap)
    assert merged["version"] == pokes[-1]["version"] and merged["previous_version"] == pokes[0]["previous_version"]
    assert all(ws in merged["changes"].get(t, []) for p in pokes for t, wss in p["changes"].items() for ws in wss)
    if merged["items"] is None:
        return
    assert all(p["items"] is not None for p in pokes) and sum(map(item_bytes, merged["items"])) <= cap

    def applied(items_lists):
        state: dict = {}
        for items in items_lists:
            for i in items:
                state[(i["workspace"], i["type"], i["key"])] = i["value"]
        return state

    assert applied([merged["items"]]) == applied(p["items"] for p in pokes)

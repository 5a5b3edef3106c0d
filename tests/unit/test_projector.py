"""The projection of log records to pokes, as a specification (docs/design.md §7)."""

from __future__ import annotations

from eventconfig.logrecords import LogRecord
from eventconfig.model import MARKER_KEY, ItemKey
from eventconfig.push.projector import Projector, merge


def write(version: int, *items: tuple[str, str, str, str | None]) -> list[LogRecord]:
    """The log records of one write: its items, then the commit marker."""
    return [LogRecord(ItemKey(w, t, k), v, version) for w, t, k, v in items] + [LogRecord(MARKER_KEY, "", version)]


def project(*writes: list[LogRecord]) -> list[dict]:
    projector = Projector()
    return [poke for records in writes for r in records if (poke := projector.add(r)) is not None]


def test_one_poke_per_version_with_the_types_and_workspaces_it_touched():
    pokes = project(write(7, ("w", "t1", "a", "1"), ("w", "t1", "b", "2"), ("w", "t2", "c", "3"), ("v", "t1", "d", "4")))
    assert pokes == [{"version": 7, "changes": {"t1": ["v", "w"], "t2": ["w"]}, "workspace_changes": None}]


def test_deletes_count_as_changes_even_of_missing_keys():
    assert project(write(3, ("w", "t", "gone", None)))[0]["changes"] == {"t": ["w"]}


def test_reserved_workspaces_never_appear_and_reserved_only_versions_give_no_poke():
    pokes = project(write(1, ("__template__", "t", "k", "v")), write(2, ("_x", "t", "k", "v"), ("w", "t", "k", "v")))
    assert pokes == [{"version": 2, "changes": {"t": ["w"]}, "workspace_changes": None}]


def test_a_version_without_items_gives_no_poke():
    assert project(write(1)) == []


def test_workspace_lifecycle_fills_workspace_changes():
    pokes = project(write(4, ("__workspaces__", "workspace", "acme", '{"enabled": true}')),
                    write(5, ("__workspaces__", "workspace", "acme", None)))
    assert pokes == [
        {"version": 4, "changes": {}, "workspace_changes": {"created": ["acme"], "deleted": []}},
        {"version": 5, "changes": {}, "workspace_changes": {"created": [], "deleted": ["acme"]}}]


def test_items_of_an_unfinished_version_wait_for_its_marker():
    projector = Projector()
    assert projector.add(LogRecord(ItemKey("w", "t", "k"), "v", 9)) is None
    assert projector.add(LogRecord(MARKER_KEY, "", 9)) == {"version": 9, "changes": {"t": ["w"]},
                                                           "workspace_changes": None}


def test_merging_keeps_the_latest_version_and_the_union_of_changes():
    pokes = project(write(1, ("w", "a", "k", "v")), write(2, ("v", "a", "k", "v"), ("w", "b", "k", "v")),
                    write(3, ("__workspaces__", "workspace", "n", "{}")))
    assert merge(pokes) == {"version": 3, "changes": {"a": ["v", "w"], "b": ["w"]},
                            "workspace_changes": {"created": ["n"], "deleted": []}}

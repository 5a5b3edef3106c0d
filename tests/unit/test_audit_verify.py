"""Audit, pure: comparing a history-derived state with a view reports every difference, readably."""

from __future__ import annotations

import json

from eventconfig.audit import compare
from eventconfig.model import Entry, ItemKey

A, B, C, D = (ItemKey("w", "t", k) for k in "abcd")
HISTORY = {A: Entry("1", 3), B: Entry("2", 5), C: Entry("3", 7)}


def test_a_view_equal_to_the_history_is_ok():
    report = compare(HISTORY, 7, sorted(HISTORY.items()), 7, 7)
    assert report.ok and report.view_items == 3
    assert report.lines()[-1] == "OK: consistent"
    assert report.to_json()["ok"] is True and report.to_json()["differences"] == []


def test_every_kind_of_difference_is_listed_with_both_sides():
    view = [(A, Entry("1", 3)), (B, Entry("two", 5)), (C, Entry("3", 6)), (D, Entry("4", 7))]
    report = compare(HISTORY, 7, view, 7, 7)
    assert not report.ok
    assert [d.describe() for d in report.differences] == [
        "value differs: w/t/b: history '2' (v5), view 'two' (v5)",
        "version differs: w/t/c: history v7, view v6",
        "extra in the view: w/t/d = '4' (v7)",
    ]
    missing = compare(HISTORY, 7, [(A, Entry("1", 3)), (B, Entry("2", 5))], 7, 7)
    assert [d.describe() for d in missing.differences] == ["missing in the view: w/t/c = '3' (v7)"]
    assert missing.lines()[-1] == "FAILED: 1 differences (1 missing)"


def test_view_versions_that_do_not_match_the_history_are_differences():
    ahead = compare({A: Entry("1", 3)}, 3, [(A, Entry("1", 3))], 9, 3)
    assert [d.describe() for d in ahead.differences] == ["view version 9 != history version 3"]
    behind = compare(HISTORY, 7, sorted(HISTORY.items()), 7, 12)
    assert [d.kind for d in behind.differences] == ["view-version"]
    assert "history version 12" in behind.differences[0].describe()
    caught_up_while_writes_landed = compare(HISTORY, 7, sorted(HISTORY.items()), 7, 12, view_may_lag=True)
    assert caught_up_while_writes_landed.ok


def test_the_report_reads_well_and_serialises():
    report = compare(HISTORY, 7, [(A, Entry("x", 3))], 7, 7, notes=["the view was rebuilt"])
    lines = report.lines()
    assert lines[0] == "view at version 7 (1 items) vs history at version 7 (history ends at 7)"
    assert lines[1] == "note: the view was rebuilt"
    assert lines[-1] == "FAILED: 3 differences (2 missing, 1 value)"
    encoded = json.loads(json.dumps(report.to_json()))
    assert encoded["differences"][0] == {"kind": "value", "item": ["w", "t", "a"],
                                         "history": {"value": "1", "version": 3},
                                         "view": {"value": "x", "version": 3},
                                         "message": "value differs: w/t/a: history '1' (v3), view 'x' (v3)"}

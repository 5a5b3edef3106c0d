"""The pure applier: log records in, atomic view writes out (no broker, no event loop)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from eventconfig.codec import default_codec
from eventconfig.logrecords import OutRecord, delete_record, marker_record, put_record
from eventconfig.model import Entry, ItemKey
from eventconfig.view import Applier, ViewStore, ViewWrites

A, B, C = ItemKey("w", "t", "a"), ItemKey("w", "t", "b"), ItemKey("x", "u", "c")


def feed(applier: Applier, records: list[OutRecord], start: int = 0) -> int:
    """Add records at consecutive offsets from ``start``; returns the next offset."""
    for offset, record in enumerate(records, start):
        applier.add(offset, record.key, record.value, record.headers)
    return start + len(records)


def test_items_are_released_only_with_their_marker():
    applier = Applier(version=0)
    end = feed(applier, [put_record(A, "1", 1), put_record(B, "2", 1)])
    assert applier.take(end) is None and applier.buffered == 2
    end = feed(applier, [marker_record(1)], end)
    assert applier.take(end) == ViewWrites({A: Entry("1", 1), B: Entry("2", 1)}, offset=3, version=1)
    assert applier.buffered == 0 and applier.take(end) is None


def test_items_after_the_last_marker_stay_buffered_and_the_offset_stops_after_the_marker():
    applier = Applier(version=0)
    end = feed(applier, [put_record(A, "1", 1), marker_record(1), put_record(A, "2", 2), put_record(C, "3", 2)])
    writes = applier.take(end + 1)  # +1: a transaction marker after the records
    assert writes == ViewWrites({A: Entry("1", 1)}, offset=2, version=1), "v2's A must not leak into v1"
    assert applier.buffered == 2
    end = feed(applier, [marker_record(2)], end)
    assert applier.take(end + 1) == ViewWrites({A: Entry("2", 2), C: Entry("3", 2)}, offset=end + 1, version=2)


def test_several_versions_in_one_take_keep_per_key_versions_and_the_latest_op_wins():
    applier = Applier(version=4)
    end = feed(applier, [put_record(A, "1", 5), put_record(B, "b", 5), marker_record(5),
                         delete_record(A, 6), marker_record(6), put_record(C, "c", 7), marker_record(7)])
    assert applier.take(end) == ViewWrites({A: None, B: Entry("b", 5), C: Entry("c", 7)}, offset=end, version=7)


def test_an_empty_write_still_advances_the_version():
    applier = Applier(version=1)
    end = feed(applier, [marker_record(2)])
    assert applier.take(end) == ViewWrites({}, offset=1, version=2)


def test_a_stray_lower_marker_never_moves_the_version_back_in_a_live_view_or_a_fresh_replay():
    records = [put_record(A, "1", 5), marker_record(5), marker_record(3), put_record(B, "2", 6), marker_record(6)]
    live = Applier(version=0)
    feed(live, records[:3])
    assert live.take(3) == ViewWrites({A: Entry("1", 5)}, offset=3, version=5)
    feed(live, records[3:], start=3)
    replay = Applier(version=0)
    feed(replay, records)
    assert live.take(5).version == replay.take(5).version == 6


def test_undecodable_records_are_skipped_and_counted_never_fatal():
    codec = default_codec()
    applier = Applier(version=0)
    good = put_record(A, "1", 1)
    junk = [
        (None, good.value, []),  # no key
        (b"garbage", good.value, []),  # not Avro
        (good.key, b"\xc3\x01" + b"\x00" * 8 + b"body", []),  # unknown fingerprint
        (good.key, None, []),  # tombstone without a version header
        (good.key, None, [("version", b"seven")]),  # tombstone with a bad version header
        (good.key, codec.encode("LogEntry", {"value": "v", "version": -1}), []),  # negative version
        (codec.encode_log_key("w", "t", "a\x00b"), good.value, []),  # NUL breaks the view's key layout
        (codec.encode_log_key("w", "", "k"), good.value, []),  # empty name
    ]
    for offset, (key, value, headers) in enumerate(junk):
        applier.add(offset, key, value, headers)
    assert applier.skipped == len(junk) and applier.buffered == 0
    end = feed(applier, [good, marker_record(1)], len(junk))
    assert applier.take(end) == ViewWrites({A: Entry("1", 1)}, offset=end, version=1)


def test_take_all_flushes_incomplete_versions_at_the_consumer_position():
    applier = Applier(version=3)
    end = feed(applier, [put_record(A, "1", 4), put_record(B, "2", 4)])
    assert applier.take_all(end + 5) == ViewWrites({A: Entry("1", 4), B: Entry("2", 4)}, offset=end + 5, version=3)
    assert applier.take_all(end + 5) is None and applier.buffered == 0
    end = feed(applier, [put_record(A, "x", 4), marker_record(4), delete_record(B, 5)], end)
    assert applier.take_all(end) == ViewWrites({A: Entry("x", 4), B: None}, offset=end, version=4)
    assert applier.take(end) is None


# --- property: any chunking of any write sequence ends in the state of a plain dict model ----------

NAMES = st.sampled_from(["a", "ab", "t", "t2", "é", "😀", "_r"])
OP = st.tuples(NAMES, NAMES, NAMES, st.one_of(st.none(), st.text(max_size=5)))  # value None = delete
WRITES = st.lists(st.lists(OP, max_size=5), min_size=1, max_size=25)


@settings(max_examples=75, deadline=None)
@given(WRITES, st.data())
def test_any_chunking_of_any_writes_matches_a_dict_model(writes, data):
    model: dict[ItemKey, Entry] = {}
    records: list[OutRecord] = []
    for version, ops in enumerate(writes, 1):
        for workspace, type_, key, value in ops:
            item = ItemKey(workspace, type_, key)
            if value is None:
                records.append(delete_record(item, version))
                model.pop(item, None)
            else:
                records.append(put_record(item, value, version))
                model[item] = Entry(value, version)
        records.append(marker_record(version))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(records)), max_size=8)) | {len(records)})
    flush_all = data.draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))

    with tempfile.TemporaryDirectory() as tmp:
        store = ViewStore.open(Path(tmp) / "view")
        applier, start = Applier(version=0), 0
        for cut, everything in zip(cuts, flush_all):
            start = feed(applier, records[start:cut], start)
            taken = applier.take_all(start) if everything else applier.take(start)
            if taken is not None:
                store.write(taken)
        view = store.snapshot()
        stored = {ItemKey(w, t, k): e for w in ["a", "ab", "t", "t2", "é", "😀", "_r"]
                  for t, k, e in view.scan_workspace(w)}
        assert stored == model
        assert all(view.get(item) == entry for item, entry in model.items())
        assert (view.version, store.meta().offset) == (len(writes), len(records))
        store.close()

"""The resume point on a transaction's last commit marker: where the next writer continues."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from eventconfig.logrecords import marker_record, put_record
from eventconfig.model import ItemKey
from eventconfig.writer.resume_point import ResumePoint, furthest, read_point, stamped


def consumed(record) -> ConsumerRecord:
    return ConsumerRecord("log", 0, 0, 0, 0, record.key, record.value, None, 0, 0, record.headers)


def test_the_last_marker_of_a_transaction_carries_the_next_offset_and_the_unanswered_reads():
    log = [put_record(ItemKey("w", "t", "k"), "v", 1), marker_record(1), put_record(ItemKey("w", "t", "k"), "x", 2),
           marker_record(2)]
    out = stamped(log, ResumePoint(42, "parked:40,41"))
    assert out[:3] == log[:3], "only the last marker changes"
    assert [read_point(consumed(r)) for r in out] == [None, None, None, ResumePoint(42, "parked:40,41")]
    assert dict(out[3].headers) == {**dict(log[3].headers), "request-offset": b"42", "parked": b"parked:40,41"}


def test_nothing_parked_adds_no_parked_header():
    (marker,) = stamped([marker_record(1)], ResumePoint(7))
    assert read_point(consumed(marker)) == ResumePoint(7, "") and "parked" not in dict(marker.headers)



def test_the_further_point_wins_and_missing_ones_are_ignored():
    group, marker = ResumePoint(10, "parked:3"), ResumePoint(25, "")
    assert furthest(group, marker) == marker and furthest(marker, group) == marker
    assert furthest(None, group) == group
    assert furthest(None, None) is None


def test_a_marker_with_an_unreadable_offset_counts_as_one_without():
    marker = marker_record(1)
    record = ConsumerRecord("log", 0, 0, 0, 0, marker.key, marker.value, None, 0, 0, [("request-offset", b"x")])
    assert read_point(record) is None

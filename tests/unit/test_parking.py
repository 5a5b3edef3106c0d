"""Parked reads named in the commit metadata: exact while short, a starting point when too many."""

from __future__ import annotations

from eventconfig.codec import default_codec
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, min_version_reads, process_batch
from eventconfig.writer.parking import MAX_METADATA_CHARS, ParkedSpan, parked_metadata, parked_span

codec = default_codec()


def record(offset: int, operation: str, **fields) -> RawRequest:
    value = codec.encode("ConfigRequest", {"operation": operation, "workspace": "w", **fields})
    return RawRequest(offset, value, [("id", f"r{offset}".encode())])


def test_nothing_parked_is_empty_metadata_and_reads_back_as_nothing():
    assert parked_metadata([]) == ""
    assert parked_span("") is None and parked_span(None) is None


def test_a_few_parked_reads_are_named_exactly():
    span = parked_span(parked_metadata([42, 7, 42, 19]))
    assert span == ParkedSpan(7, frozenset({7, 19, 42}))
    assert [o for o in range(50) if span.holds(o)] == [7, 19, 42]


def test_too_many_to_name_keep_only_the_oldest_and_every_later_offset_counts():
    offsets = range(10**9, 10**9 + 500)
    metadata = parked_metadata(offsets)
    assert len(metadata) <= MAX_METADATA_CHARS
    span = parked_span(metadata)
    assert span == ParkedSpan(10**9) and span.holds(10**9 + 10_000) and not span.holds(10**9 - 1)


def test_metadata_that_is_not_ours_recovers_nothing():
    assert parked_span("written by someone else") is None
    assert parked_span("parked:1,x") is None


def test_a_parked_read_remembers_its_offset_and_a_later_batch_keeps_it():
    config = BatchConfig()
    parked = process_batch([record(5, "config", min_version=2)], DictReader(), {}, 0, [], config, 0).waiting
    assert [w.offset for w in parked] == [5]
    still = process_batch([record(6, "config")], DictReader(), {}, 1, parked, config, 10).waiting
    assert [w.offset for w in still] == [5]


def test_only_min_version_reads_are_candidates_for_re_parking():
    records = [record(1, "config", min_version=3), record(2, "config"), RawRequest(3, b"junk", []),
               record(4, "put", values=[], min_version=9), record(5, "get", keys=[], min_version=1)]
    assert [r.offset for r in min_version_reads(records)] == [1, 5]

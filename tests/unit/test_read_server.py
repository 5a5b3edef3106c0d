"""The pure part of answering reads of the read topic (docs/design.md §6): a read waits until the view's
log position reaches the log's end looked up after the read was consumed, and its ``min_version``; a
write on the read topic is refused and not done."""

from __future__ import annotations

from eventconfig.codec import default_codec
from eventconfig.model import Entry, ItemKey
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, answer_reads, process_batch
from eventconfig.writer.read_server import behind

codec = default_codec()
KEY = ItemKey("w", "t", "k")


def raw(offset: int, operation: str, **fields) -> RawRequest:
    value = codec.encode("ConfigRequest", {"operation": operation, "workspace": "w", **fields})
    return RawRequest(offset, value, [("id", f"r{offset}".encode())])


def get(offset: int, **fields) -> RawRequest:
    return raw(offset, "get", keys=[{"type": "t", "key": "k"}], **fields)


def values(result) -> list:  # type: ignore[no-untyped-def]
    return [codec.decode("ConfigResponse", r.value) for r in result.responses]


def test_a_read_waits_until_the_view_reaches_the_log_end_looked_up_after_it_was_consumed():
    reads = behind(process_batch([get(0)], DictReader(), {}, 0, BatchConfig(), now_ms=0, reads_only=True).reads, 10)
    stale = DictReader({KEY: Entry("old", 1)}, version=1)
    answered, later = answer_reads(reads, stale, 9, BatchConfig(), now_ms=1)  # view position 9 < end 10
    assert not answered.responses and later == reads
    current = DictReader({KEY: Entry("new", 2)}, version=2)
    answered, later = answer_reads(later, current, 10, BatchConfig(), now_ms=2)
    assert not later and values(answered)[0]["values"][0]["value"] == "new"


def test_a_min_version_read_also_waits_for_its_version_and_is_answered_timeout_at_its_deadline():
    reads = behind(process_batch([get(0, min_version=5)], DictReader(), {}, 0, BatchConfig(), now_ms=0,
                                 reads_only=True).reads, 3)
    view = DictReader({KEY: Entry("v", 4)}, version=4)
    answered, later = answer_reads(reads, view, 50, BatchConfig(), now_ms=1)  # past the end, below version 5
    assert not answered.responses and later == reads
    answered, later = answer_reads(later, view, 50, BatchConfig(), now_ms=reads[0].deadline_ms)
    assert not later and values(answered)[0]["error"]["type"] == "timeout"


def test_a_write_on_the_read_topic_is_answered_bad_request_and_not_done():
    put = raw(0, "put", values=[{"type": "t", "key": "k", "value": "v"}])
    result = process_batch([put, get(1)], DictReader(), {}, 0, BatchConfig(), now_ms=0, reads_only=True)
    assert values(result)[0]["error"]["type"] == "bad-request" and "request topic" in values(result)[0]["error"]["message"]
    assert not result.log and not result.history and result.version == 0 and len(result.reads) == 1

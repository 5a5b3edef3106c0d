"""The group-commit batch as a specification: what one transaction carries, and the safety limits."""

from __future__ import annotations

from dataclasses import replace

from eventconfig.codec import default_codec
from eventconfig.model import Entry, ItemKey
from eventconfig.view.reader import DictReader
from eventconfig.settings import RECORD_OVERHEAD_BYTES
from eventconfig.deadletter import DLQ_EXTRA_BYTES
from eventconfig.writer.batch import BatchConfig, RawRequest, answer_reads, process_batch

codec = default_codec()


def put(request_id: str, *items: tuple[str, str, str]) -> RawRequest:
    value = codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                           "values": [{"type": t, "key": k, "value": v} for t, k, v in items]})
    return RawRequest(0, value, [("id", request_id.encode())])


def config_request() -> bytes:
    return codec.encode("ConfigRequest", {"operation": "config", "workspace": "w"})


def responses(result) -> list[dict]:
    return [codec.decode("ConfigResponse", r.value) for r in result.responses]


def test_a_write_whose_history_record_would_be_too_large_fails_whole_and_writes_nothing():
    config = BatchConfig(max_response_bytes=4096)
    big = [("t", str(i), "x" * 1000) for i in range(5)]
    result = process_batch([put("big", *big), put("small", ("t", "k", "v"))], DictReader(), {}, 0, config, 0)
    first, second = responses(result)
    assert first["error"]["type"] == "too-large" and "history record" in first["error"]["message"]
    assert second["version"] == 1, "the next request gets the version the failed one did not use"
    assert len(result.history) == 1 and len(result.log) == 2


def test_an_oversized_dead_letter_is_cut_to_the_limit_and_marked():
    config = BatchConfig(max_response_bytes=100)
    result = process_batch([RawRequest(7, b"\x00" * 500, [("id", b"x")])], DictReader(), {}, 0, config, 0)
    (dead,) = result.dlq
    assert len(dead.value) == 100
    assert dict(dead.headers)["truncated-from"] == b"500"
    assert dict(dead.headers)["source-offset"] == b"7"


def raw_request(request_id: str, operation: str, headers: list[tuple[str, bytes]] = (), offset: int = 0,
            **fields) -> RawRequest:
    value = codec.encode("ConfigRequest", {"operation": operation, "workspace": "w", **fields})
    return RawRequest(offset, value, [("id", request_id.encode()), *headers])


def test_a_request_past_its_deadline_is_answered_timeout_and_writes_nothing():
    late = raw_request("late", "put", [("deadline", b"1000")], values=[{"type": "t", "key": "k", "value": "v"}])
    on_time = raw_request("on-time", "put", [("deadline", b"1001")], values=[{"type": "t", "key": "k", "value": "v"}])
    result = process_batch([late, on_time], DictReader(), {}, 0, BatchConfig(), now_ms=1000)
    expired, applied = responses(result)
    assert expired["error"]["type"] == "timeout" and "deadline" in expired["error"]["message"]
    assert applied["error"] is None and applied["version"] == 1
    assert len(result.history) == 1 and result.version == 1


def test_without_a_deadline_header_a_request_is_handled_however_late():
    result = process_batch([put("old", ("t", "k", "v"))], DictReader(), {}, 0, BatchConfig(), now_ms=10**15)
    assert responses(result)[0]["version"] == 1


def test_a_malformed_deadline_is_a_bad_request_and_writes_nothing():
    for bad in (b"soon", b"-5", b"12.5", b"", "١٢".encode(), b"9" * 19):
        result = process_batch([raw_request("r", "put", [("deadline", bad)], values=[])], DictReader(), {}, 0,
                               BatchConfig(), now_ms=0)
        (response,) = responses(result)
        assert response["error"]["type"] == "bad-request" and "deadline" in response["error"]["message"], bad
        assert not result.history and not result.dlq


def test_a_read_waits_until_the_earlier_of_its_deadline_and_the_min_version_wait():
    config = BatchConfig(min_version_wait_ms=5_000)
    short = raw_request("short", "config", [("deadline", b"1200")], min_version=3)
    long = raw_request("long", "config", [("deadline", b"99999")], min_version=3)
    reads = process_batch([short, long], DictReader(), {}, 0, config, now_ms=1000).reads
    assert [(w.request_id, w.deadline_ms) for w in reads] == [("short", 1200), ("long", 6000)]
    answered, later = answer_reads(reads, DictReader(), 0, config, now_ms=1200)
    assert [w.request_id for w in later] == ["long"]
    assert responses(answered)[0]["error"]["type"] == "timeout"


def test_reads_are_not_answered_in_the_transaction_and_need_every_write_before_them():
    get = raw_request("g", "get", keys=[{"type": "t", "key": "k"}])
    result = process_batch([get, put("p", ("t", "k", "v")), get], DictReader(), {}, 4, BatchConfig(), 0)
    assert [r.key for r in result.responses] == [b"p"], "only the write is answered in the transaction"
    assert [(w.offset, w.version) for w in result.reads] == [(0, 4), (0, 5)], "the second read follows the put"


def test_a_read_is_answered_once_the_transactions_before_it_committed_and_the_view_has_its_version():
    read = replace(process_batch([raw_request("r", "config")], DictReader(), {}, 7, BatchConfig(), 0).reads[0],
                   commits=3)
    view = DictReader({ItemKey("w", "t", "k"): Entry("v", 7)}, version=7)
    assert answer_reads([read], view, 2, BatchConfig(), 0)[1], "a transaction before it has not committed"
    assert answer_reads([read], DictReader(version=6), 3, BatchConfig(), 0)[1], "a write before it is missing"
    answered, later = answer_reads([read], view, 3, BatchConfig(), 0)
    assert not later and responses(answered)[0]["config"] == {"t": {"k": "v"}}


class CountingReader(DictReader):
    """Counts the scans that reach the view."""

    scans = 0

    def scan_type(self, workspace, type):
        self.scans += 1
        return super().scan_type(workspace, type)


def test_identical_reads_in_one_batch_are_answered_from_one_view_read():
    """A change reaching a fleet: every subscriber asks the same getvalues in one round of reads."""
    reads = process_batch([raw_request(f"s{i}", "getvalues", type="t") for i in range(50)],
                          DictReader(), {}, 7, BatchConfig(), 0).reads
    view = CountingReader({ItemKey("w", "t", "k"): Entry("v", 7), ItemKey("w", "u", "k"): Entry("x", 6)}, version=7)
    answered, later = answer_reads(reads, view, 0, BatchConfig(), 0)
    assert not later and view.scans == 1, "the view was scanned once per read"
    assert [[(v["key"], v["value"]) for v in r["values"]] for r in responses(answered)] == [[("k", "v")]] * 50
    answer_reads(reads[:1], view, 0, BatchConfig(), 0)
    assert view.scans == 2, "a later round reads the view afresh"


def test_a_read_topic_read_the_view_does_not_reach_in_time_names_the_log_offsets():
    read = replace(process_batch([raw_request("r", "config")], DictReader(), {}, 0, BatchConfig(), 0).reads[0],
                   commits=100, deadline_ms=10)
    answered, _ = answer_reads([read], DictReader(), 50, BatchConfig(), 10, log_offsets=True)
    assert "offset 50 of 100" in responses(answered)[0]["error"]["message"]


def test_a_read_the_view_does_not_reach_in_time_says_what_it_waited_for():
    config = BatchConfig(min_version_wait_ms=100)
    reads = process_batch([raw_request("plain", "config"), raw_request("ahead", "config", min_version=9)],
                          DictReader(), {}, 3, config, now_ms=0).reads
    answered, later = answer_reads([replace(read, commits=2) for read in reads], DictReader(version=3), 1, config,
                                   now_ms=100)
    plain, ahead = (r["error"] for r in responses(answered))
    assert not later and plain["type"] == ahead["type"] == "timeout"
    assert "writes before it did not commit" in plain["message"] and "1 of 2 transactions" in plain["message"]
    assert "version 9 not reached" in ahead["message"]


def test_an_answer_goes_to_the_partition_its_request_names_and_otherwise_is_placed_by_hash():
    routed = raw_request("routed", "put", [("reply-partition", b"5")], values=[{"type": "t", "key": "k", "value": "v"}])
    undecodable = RawRequest(1, b"\x00", [("id", b"junk"), ("reply-partition", b"2")])
    plain = raw_request("plain", "config")
    result = process_batch([routed, undecodable, plain], DictReader(), {}, 0, BatchConfig(), now_ms=0)
    assert [(r.key, r.partition) for r in result.responses] == [(b"routed", 5), (b"junk", 2)]
    answered, _ = answer_reads(result.reads, DictReader(version=1), 0, BatchConfig(), now_ms=0)
    assert [(r.key, r.partition) for r in answered.responses] == [(b"plain", None)]


def test_a_read_is_answered_on_the_partition_it_named():
    reads = process_batch([raw_request("r", "config", [("reply-partition", b"3")], min_version=1)], DictReader(),
                          {}, 0, BatchConfig(), now_ms=0).reads
    assert [w.partition for w in reads] == [3]
    answered, _ = answer_reads(reads, DictReader(version=1), 0, BatchConfig(), now_ms=1)
    assert [(r.key, r.partition) for r in answered.responses] == [(b"r", 3)]


def test_a_malformed_reply_partition_is_a_bad_request_placed_by_hash_and_writes_nothing():
    for bad in (b"two", b"-1", b"", b"1234567890", "١".encode(), b"\xff"):
        put_request = raw_request("r", "put", [("reply-partition", bad)], values=[{"type": "t", "key": "k", "value": "v"}])
        result = process_batch([put_request], DictReader(), {}, 0, BatchConfig(), now_ms=0)
        (response,) = responses(result)
        assert response["error"]["type"] == "bad-request" and "reply-partition" in response["error"]["message"], bad
        assert result.responses[0].partition is None and not result.history


def record_size(record) -> int:
    return len(record.key or b"") + len(record.value or b"") + sum(len(n) + len(v) for n, v in record.headers)


def test_every_output_record_is_bounded_by_construction_whatever_the_request_carries():
    assert DLQ_EXTRA_BYTES < RECORD_OVERHEAD_BYTES, "a DLQ record's key and headers fit beside a full value"
    config = BatchConfig(max_response_bytes=1000)
    huge = b"h" * 50_000
    hostile = [
        RawRequest(1, b"\x00" * 5000, [("id", b"ok-id"), ("bulk", huge), *[("n", b"x")] * 20_000], key=huge),
        RawRequest(2, config_request(), [("id", huge)]),
    ]
    result = process_batch(hostile, DictReader(), {}, 0, config, 0)
    assert len(result.dlq) == 2 and len(result.responses) == 1, "only the first has an id that can be echoed"
    for record in result.dlq + result.responses:
        assert record_size(record) <= config.max_response_bytes + DLQ_EXTRA_BYTES
    first = dict(result.dlq[0].headers)
    assert first["id"] == b"ok-id" and first["truncated-from"] == b"5000"
    kept = (16 * 1024 - len(b"idok-id")) // len(b"nx")  # the small headers that fit the DLQ's header budget
    assert first["dropped"].startswith(f"{20_000 - kept + 2}: key(50000), bulk(50004), n(2), n(2)".encode())
    assert len(first["dropped"]) <= 1024 and result.dlq[0].key is None
    assert dict(result.dlq[1].headers)["error-type"] == b"BadId"
    assert b"over the 256-byte limit" in dict(result.dlq[1].headers)["error"]


def test_an_id_header_must_be_short_utf8_and_single_or_the_request_is_dead_lettered_unanswered():
    requests = [RawRequest(1, config_request(), [("id", b"a" * 257)]),
                RawRequest(2, config_request(), [("id", b"\xff\xfe")]),
                RawRequest(3, config_request(), [("id", b"one"), ("id", b"two")]),
                RawRequest(4, config_request(), [("id", b"a" * 256)])]
    result = process_batch(requests, DictReader(), {}, 0, BatchConfig(), 0)
    assert [dict(r.headers)["error-type"] for r in result.dlq] == [b"BadId", b"BadId", b"DuplicateId"]
    assert [r.request_id for r in result.reads] == ["a" * 256], "an id at the limit is still answered"


def test_an_over_long_actor_is_answered_too_large_and_writes_nothing():
    request = RawRequest(1, put("p", ("t", "k", "v")).value, [("id", b"p"), ("actor", b"a" * 257)])
    result = process_batch([request], DictReader(), {}, 0, BatchConfig(), 0)
    (response,) = responses(result)
    assert response["error"]["type"] == "too-large" and "'actor'" in response["error"]["message"]
    assert not result.log and not result.history


def test_a_refused_request_is_dead_lettered_minimally_and_the_rest_of_the_batch_is_handled():
    requests = [put("p1", ("t", "k", "x" * 3000)), RawRequest(1, put("p2", ("t", "k", "v")).value, [("id", b"p2")])]
    result = process_batch(requests, DictReader(), {}, 0, BatchConfig(), 0,
                           refused={0: "MessageSizeTooLargeError: the broker refused it"})
    (dead,) = result.dlq
    assert dead.key is None and dead.value is None
    assert dict(dead.headers) == {"id": b"p1", "error": b"MessageSizeTooLargeError: the broker refused it",
                                  "error-type": b"Unproducible", "source-offset": b"0"}
    assert [r["version"] for r in responses(result)] == [1], "the refused request wrote nothing"


def test_a_request_whose_dead_letter_was_refused_too_is_skipped_without_output():
    result = process_batch([put("p1", ("t", "k", "v"))], DictReader(), {}, 0, BatchConfig(), 0, refused={0: None})
    assert not (result.dlq or result.responses or result.log) and result.outcomes == [("?", "skipped")]

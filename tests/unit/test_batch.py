"""The group-commit batch as a specification: what one transaction carries, and the safety limits."""

from __future__ import annotations

from eventconfig.codec import default_codec
from eventconfig.view.reader import DictReader
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch

codec = default_codec()


def put(request_id: str, *items: tuple[str, str, str]) -> RawRequest:
    value = codec.encode("ConfigRequest", {"operation": "put", "workspace": "w",
                                           "values": [{"type": t, "key": k, "value": v} for t, k, v in items]})
    return RawRequest(0, value, [("id", request_id.encode())])


def responses(result) -> list[dict]:
    return [codec.decode("ConfigResponse", r.value) for r in result.responses]


def test_a_write_whose_history_record_would_be_too_large_fails_whole_and_writes_nothing():
    config = BatchConfig(max_response_bytes=4096)
    big = [("t", str(i), "x" * 1000) for i in range(5)]
    result = process_batch([put("big", *big), put("small", ("t", "k", "v"))], DictReader(), {}, 0, [], config, 0)
    first, second = responses(result)
    assert first["error"]["type"] == "too-large" and "history record" in first["error"]["message"]
    assert second["version"] == 1, "the next request gets the version the failed one did not use"
    assert len(result.history) == 1 and len(result.log) == 2


def test_an_oversized_dead_letter_is_cut_to_the_limit_and_marked():
    config = BatchConfig(max_response_bytes=100)
    result = process_batch([RawRequest(7, b"\x00" * 500, [("id", b"x")])], DictReader(), {}, 0, [], config, 0)
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
    result = process_batch([late, on_time], DictReader(), {}, 0, [], BatchConfig(), now_ms=1000)
    expired, applied = responses(result)
    assert expired["error"]["type"] == "timeout" and "deadline" in expired["error"]["message"]
    assert applied["error"] is None and applied["version"] == 1
    assert len(result.history) == 1 and result.version == 1


def test_without_a_deadline_header_a_request_is_handled_however_late():
    result = process_batch([put("old", ("t", "k", "v"))], DictReader(), {}, 0, [], BatchConfig(), now_ms=10**15)
    assert responses(result)[0]["version"] == 1


def test_a_malformed_deadline_is_a_bad_request_and_writes_nothing():
    for bad in (b"soon", b"-5", b"12.5", b"", "١٢".encode(), b"9" * 19):
        result = process_batch([raw_request("r", "put", [("deadline", bad)], values=[])], DictReader(), {}, 0, [],
                               BatchConfig(), now_ms=0)
        (response,) = responses(result)
        assert response["error"]["type"] == "bad-request" and "deadline" in response["error"]["message"], bad
        assert not result.history and not result.dlq


def test_a_parked_read_waits_until_the_earlier_of_its_deadline_and_the_min_version_wait():
    config = BatchConfig(min_version_wait_ms=5_000)
    short = raw_request("short", "config", [("deadline", b"1200")], min_version=3)
    long = raw_request("long", "config", [("deadline", b"99999")], min_version=3)
    parked = process_batch([short, long], DictReader(), {}, 0, [], config, now_ms=1000).waiting
    assert [(w.request_id, w.deadline_ms) for w in parked] == [("short", 1200), ("long", 6000)]
    later = process_batch([], DictReader(), {}, 0, parked, config, now_ms=1200)
    assert [w.request_id for w in later.waiting] == ["long"]
    assert responses(later)[0]["error"]["type"] == "timeout"

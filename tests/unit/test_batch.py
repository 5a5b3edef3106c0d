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

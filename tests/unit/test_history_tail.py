"""Which version a history record claims: a newly active writer stays above it, whatever it holds."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from eventconfig.codec import default_codec
from eventconfig.writer.history_tail import record_version

codec = default_codec()


def record(key: bytes | None, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("h", 0, 0, 0, 0, key, value, None, 0, 0, [])


def mutation(version: int) -> bytes:
    return codec.encode("Mutation", {"version": version, "timestamp_ms": 1, "request_id": "r", "actor": None,
                                     "workspace": "w", "operation": "put", "changes": []})


@pytest.mark.parametrize("key, value, claimed", [
    (b"7", mutation(7), 7),
    (b"7", mutation(9), 9),  # key and value disagree: the higher one counts
    (b"12", b"not avro", 12),
    (b"\xff", mutation(5), 5),
    (None, None, None),
    (b"x", b"\xc3\x01garbage", None),
])
def test_a_history_record_claims_the_higher_of_its_key_and_its_mutation_and_garbage_claims_nothing(
        key, value, claimed):
    assert record_version(record(key, value)) == claimed

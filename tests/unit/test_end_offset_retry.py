"""`end_offset` asks again when an offset request timed out (a frozen leader), a bounded number of times."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from eventconfig.kafka.reading import END_OFFSET_ATTEMPTS, end_offset

TP = TopicPartition("log", 0)


class FrozenLeader:
    """A consumer whose first ``timeouts`` offset requests go to a frozen leader."""

    def __init__(self, timeouts: int) -> None:
        self.timeouts = timeouts
        self.calls = 0

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.calls += 1
        if self.calls <= self.timeouts:
            raise KafkaTimeoutError("Failed to get offsets by times in 5000 ms")
        return {tp: 42 for tp in partitions}


async def test_a_timed_out_offset_request_is_asked_again():
    consumer = FrozenLeader(timeouts=END_OFFSET_ATTEMPTS - 1)
    assert await end_offset(consumer, TP) == 42  # type: ignore[arg-type]
    assert consumer.calls == END_OFFSET_ATTEMPTS


async def test_a_leader_that_stays_frozen_fails_after_the_last_attempt():
    consumer = FrozenLeader(timeouts=END_OFFSET_ATTEMPTS)
    with pytest.raises(KafkaTimeoutError):
        await end_offset(consumer, TP)  # type: ignore[arg-type]
    assert consumer.calls == END_OFFSET_ATTEMPTS

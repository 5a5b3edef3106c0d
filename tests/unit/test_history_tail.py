"""Where a newly active writer continues (docs/design.md §6, §14.3): only from a history that ends at the
log's last stamped commit marker; a record appended to the history, a different hash at the marker's
version, an unreadable last record or a version above the bound make it refuse (HistoryMismatch)."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from eventconfig.codec import default_codec
from eventconfig.hashchain import seal
from eventconfig.kafka.role_state import RoleMachine, State, Step
from eventconfig.model import MAX_VERSION
from eventconfig.writer.history_tail import HistoryEnd, HistoryMismatch, Marker, continuation, end_of

codec = default_codec()


def record(offset: int, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("h", 0, offset, 0, 0, b"k", value, None, 0, 0, [])


def mutation(version: int, prev_hash: str = "") -> dict:
    return seal({"version": version, "timestamp_ms": 1, "request_id": "r", "actor": None, "workspace": "w",
                 "operation": "put", "changes": []}, prev_hash)


def test_the_end_of_the_history_is_its_last_record_whatever_it_holds():
    first, second = mutation(1), mutation(2, mutation(1)["hash"])
    assert end_of([]) is None
    assert end_of([record(0, codec.encode("Mutation", first)), record(1, codec.encode("Mutation", second))]) == \
        HistoryEnd(1, 2, second["hash"])
    assert end_of([record(0, codec.encode("Mutation", first)), record(1, b"garbage")]) == HistoryEnd(1, None, "")
    assert end_of([record(3, None)]) == HistoryEnd(3, None, "")


def test_a_history_that_ends_at_the_marker_continues_the_versions_and_the_chain():
    assert continuation(HistoryEnd(9, 4, "h4"), Marker(4, "h4"), 4) == (4, "h4")
    assert continuation(HistoryEnd(9, 4, "h4"), Marker(4, "h4"), 50) == (50, "h4"), "a stray higher log marker"
    assert continuation(HistoryEnd(9, 4, ""), Marker(4, ""), 4) == (4, ""), "written before the chain"
    assert continuation(None, None, 0) == (0, ""), "a new deployment"
    assert continuation(None, Marker(7, "h7"), 7) == (7, "h7"), "a history emptied by retention"
    assert continuation(HistoryEnd(0, 3, ""), None, 3) == (3, ""), "no stamped marker: the view's version"


@pytest.mark.parametrize("end, marker, view, reason", [
    (HistoryEnd(10, 5, "forged"), Marker(4, "h4"), 4, r"offset 10\) is version 5, the log's last commit marker version 4"),
    (HistoryEnd(10, 2**63 - 1, "x"), Marker(4, "h4"), 4, "is version 9223372036854775807"),
    (HistoryEnd(10, 3, "h3"), Marker(4, "h4"), 4, "is version 3"),  # the history lost the marker's record
    (HistoryEnd(10, 4, "other"), Marker(4, "h4"), 4, "does not carry the chain head"),
    (HistoryEnd(10, None, ""), Marker(4, "h4"), 4, "is not a readable Mutation"),
    (HistoryEnd(0, 1, "h1"), None, 0, "is version 1, the log's last commit marker version 0"),  # before any write
    (None, Marker(MAX_VERSION + 1, "h"), 0, "above the bound"),
])
def test_any_other_end_is_refused_with_what_does_not_match(end, marker, view, reason):
    with pytest.raises(HistoryMismatch, match=reason):
        continuation(end, marker, view)


def test_a_refusing_role_writes_nothing_and_checks_again_after_refuse_s():
    machine = RoleMachine(retry_s=1.0, refuse_s=5.0)
    machine.catching_up()
    machine.refused(now=100.0)
    assert machine.state is State.REFUSING
    assert machine.next_step(assigned=True, now=104.0) is Step.IDLE
    machine.stepped_down()
    assert machine.state is State.REFUSING, "a rebalance does not skip the wait"
    assert machine.next_step(assigned=True, now=105.0) is Step.TAKE_OVER
    machine.catching_up()
    machine.activated()
    assert machine.state is State.ACTIVE

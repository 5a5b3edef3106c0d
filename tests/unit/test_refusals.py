"""How the writer isolates requests whose output the broker refuses (eventconfig.writer.refusals)."""

from __future__ import annotations

from eventconfig.writer.refusals import Refusals


def test_a_refused_transaction_is_redone_one_request_at_a_time_until_past_its_last_request() -> None:
    refusals = Refusals()
    assert refusals.batch_size(500) == 500
    refusals.failed([7, 8, 9], "MessageSizeTooLarge")
    assert refusals.batch_size(500) == 1 and refusals.refused == {}
    refusals.committed([7])
    assert refusals.batch_size(500) == 1, "8 and 9 are still to be redone alone"
    refusals.failed([8], "MessageSizeTooLarge")
    assert refusals.refused == {8: "MessageSizeTooLarge"}, "the culprit is dead-lettered on the redo"
    refusals.committed([8])
    refusals.committed([9])
    assert refusals.batch_size(500) == 500 and refusals.refused == {}


def test_a_request_whose_dead_letter_is_refused_too_is_skipped() -> None:
    refusals = Refusals()
    refusals.failed([4], "too large")
    refusals.failed([4], "too large")
    assert refusals.refused == {4: None}

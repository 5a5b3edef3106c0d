"""One answer per TrustGraph id (docs/design.md §13.4): the translator drops a second answer to an id
within the window (a read the writer answered again after a fail-over), and forgets ids older than it."""

from __future__ import annotations

from eventconfig.trustgraph.answered import AnsweredIds


def test_a_second_answer_to_an_id_within_the_window_is_dropped():
    answered = AnsweredIds(window_ms=1000)
    assert answered.first("a", 100) and answered.first("b", 200)
    assert not answered.first("a", 900), "answered again after a fail-over"
    assert len(answered) == 2


def test_ids_older_than_the_window_are_forgotten_so_memory_stays_bounded():
    answered = AnsweredIds(window_ms=1000)
    for i in range(100):
        assert answered.first(f"id{i}", i * 100)
    assert len(answered) <= 11
    assert answered.first("id0", 20_000), "an id answered long ago counts as new (TrustGraph uses fresh UUIDs)"

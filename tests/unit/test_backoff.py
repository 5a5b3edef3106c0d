"""Every retry loop (the view's open and read, the subscriber's fetches) waits by one Backoff."""

from eventconfig.tasks import Backoff


def test_the_waits_double_from_the_first_up_to_the_ceiling_and_a_reset_starts_over():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1, "after a success the next failure waits the shortest time again"

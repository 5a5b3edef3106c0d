"""The watch hub's memory: the ring that serves recent resumes and the bounded inbox of one stream."""

from __future__ import annotations

import asyncio

from eventconfig.gateway.watch_ring import Closed, Inbox, Interrupted, Lagged, PokeRing


def poke(version: int) -> dict[str, object]:
    return {"version": version, "changes": {"t": ["ws"]}, "workspace_changes": None}


def test_the_ring_keeps_the_newest_pokes_and_covers_every_version_above_its_floor():
    ring = PokeRing(3)
    assert ring.floor is None and not ring.covers(0)
    for offset, version in ((10, 4), (12, 7), (14, 8), (16, 12)):
        ring.add(offset, poke(version))
    assert len(ring) == 3 and ring.floor == 6 and ring.newest == 12
    assert ring.covers(6) and ring.covers(12) and not ring.covers(5)  # version 4's poke left the ring
    assert [p["version"] for p in ring.after(7)] == [8, 12]
    assert ring.after(12) == []


def test_the_ring_tells_which_of_its_pokes_retention_deleted():
    ring = PokeRing(10)
    for offset, version in ((10, 4), (12, 7), (14, 8)):
        ring.add(offset, poke(version))
    assert ring.first_held_after(10) == (False, None)  # nothing of the ring was deleted
    assert ring.first_held_after(13) == (True, 8)
    assert ring.first_held_after(20) == (True, None)
    ring.clear()
    assert len(ring) == 0 and ring.floor is None


async def test_an_inbox_hands_over_what_was_queued_and_waits_for_more():
    inbox = Inbox(10)
    assert await inbox.take(0.01) == []
    waiting = asyncio.create_task(inbox.take(5))
    await asyncio.sleep(0)
    assert inbox.put(poke(1))
    assert await asyncio.wait_for(waiting, 5) == [poke(1)]
    inbox.put(Interrupted("broker gone", 200))
    inbox.put(Closed())
    assert await inbox.take(0) == [Interrupted("broker gone", 200), Closed()]


async def test_a_slow_stream_drops_its_pokes_for_one_lagged_marker_and_stays_bounded():
    inbox = Inbox(3)
    assert all(inbox.put(poke(v)) for v in (1, 2, 3))
    inbox.put(Interrupted("x", 1))
    assert not inbox.put(poke(4))  # the fourth overflows: pokes 1-4 are dropped, the stream lags
    assert inbox.put(poke(5))
    for version in (6, 7):
        inbox.put(poke(version))
    assert not inbox.put(poke(8))  # again: the older marker and pokes are replaced by one at 8
    items = await inbox.take(0)
    assert items == [Interrupted("x", 1), Lagged(8, "the stream fell more than 3 pokes behind")]
    assert inbox.put(poke(9)) and await inbox.take(0) == [poke(9)]


def test_an_inbox_lacks_only_the_pokes_after_the_version_its_stream_opened_at():
    inbox = Inbox(3)
    assert not inbox.lacks(1)  # still opening: its opening will account for what the hub read so far
    inbox.opened(7)
    assert not inbox.lacks(7) and inbox.lacks(8)

"""Waiting for the view: every move of its position wakes the waiters, records or not; and applying a
large version never holds the event loop for long.

aiokafka moves a read_committed consumer past an aborted transaction and its marker without
delivering a record. That is exactly what happens when a killed writer's open transaction is
aborted by its successor's fencing, just as the successor waits for its view to catch up.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from eventconfig.codec import default_codec
from eventconfig.logrecords import marker_record, put_record
from eventconfig.model import ItemKey
from eventconfig.settings import Settings
from eventconfig.view.materializer import Materializer
from eventconfig.view.store import ViewStore, ViewStoreOptions


async def test_a_position_moved_without_records_wakes_a_caught_up_waiter(tmp_path):
    view = Materializer(Settings.load(env={}), tmp_path / "view")
    view._store = ViewStore.open(tmp_path / "view")  # as start() leaves it, without a broker
    view._ready = True
    try:
        waiter = asyncio.create_task(view._wait(lambda: view.position >= 5, timeout=30))
        await asyncio.sleep(0.05)
        await view._apply([], 5)  # a fetch that skipped an aborted transaction: no records, position 5
        assert await asyncio.wait_for(waiter, 0.5), "the waiter must not sleep through the move"
    finally:
        view._store.close()


class Consumed(NamedTuple):
    """The fields of aiokafka's ConsumerRecord the materializer reads."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


async def test_a_10000_item_write_gives_the_event_loop_many_turns_and_readers_see_all_or_nothing(tmp_path):
    """While the view decodes and writes one 10,000-item version, another task on the loop (a
    heartbeat, a poke, a reader) runs many times; every snapshot it takes holds version 0 with none of
    the items or version 1 with all of them, and once the version reads 1 point reads find the items."""
    codec = default_codec()
    items = [ItemKey("w", "t", f"k{n:05d}") for n in range(10_000)]
    out = [put_record(item, "value", 1, codec) for item in items] + [marker_record(1, codec)]
    records = [Consumed(offset, r.key, r.value, list(r.headers)) for offset, r in enumerate(out)]
    view = Materializer(Settings.load(env={}), tmp_path / "view")
    view._store = ViewStore.open(tmp_path / "view", ViewStoreOptions(cache_items=100))
    view._ready = True
    ticks, torn = 0, []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            with view.store.snapshot() as snapshot:
                state = (snapshot.version, snapshot.get(items[0]) is not None, snapshot.get(items[-1]) is not None)
            if state not in ((0, False, False), (1, True, True)):
                torn.append(state)
            if view.version == 1 and view.store.get(items[-1]) is None:  # the items come no later than the version
                torn.append("version 1 without its items")
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        before = ticks
        await view._apply(records, len(records))
        during = ticks - before
    finally:
        task.cancel()
        view._store.close()
    assert during >= 10_000 // 500 - 1, f"the loop ran only {during} times during the apply"
    assert torn == [], "a reader saw part of a version"
    assert view.position == len(records)

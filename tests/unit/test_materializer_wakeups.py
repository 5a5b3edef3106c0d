"""Waiting for the view: every move of its position wakes the waiters, records or not.

aiokafka moves a read_committed consumer past an aborted transaction and its marker without
delivering a record. That is exactly what happens when a killed writer's open transaction is
aborted by its successor's fencing, just as the successor waits for its view to catch up.
"""

from __future__ import annotations

import asyncio

from eventconfig.settings import Settings
from eventconfig.view.materializer import Materializer
from eventconfig.view.store import ViewStore


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

"""Stopping background tasks, running blocking work off the event loop and backing off between
retries: asyncio helpers every long-running component shares."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks and wait until each has finished (its own cancellation is not an error)."""
    for task in tasks:
        if task is not None:
            task.cancel()
    for task in tasks:
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a worker thread, so the event loop (heartbeats, pokes, other
    requests) keeps running. Cancelling the caller still waits for the thread to finish: whatever it
    uses (a view being written, a snapshot being read) must not be closed under it."""
    done = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await done
        raise


class Backoff:
    """The waits of a retry loop: ``first``, doubling up to ``ceiling``; :meth:`reset` after a success.

    Example::

        backoff = Backoff(0.1, 5.0)
        while True:
            try: return await attempt()
            except KafkaError: await asyncio.sleep(backoff.next())
    """

    def __init__(self, first: float, ceiling: float) -> None:
        self.first, self.ceiling = first, ceiling
        self.delay = first  # the wait the next call of :meth:`next` gives

    def next(self) -> float:
        delay = self.delay
        self.delay = min(delay * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self.delay = self.first

"""What the gateway talks to: a ConfigClient for writes, a LocalView for reads, both as one unit.

Writes go to the service as requests, carrying the actor of the HTTP request that caused them. Reads
come from the gateway's own local view of the log (no request round trip); ``min_version`` waits
until that view has applied the version, which is how a caller reads its own writes.

Example::

    backend = Backend(settings, view_path)
    await backend.start()
    with acting_as("alice"):
        version = await backend.client.put("acme", "prompt", "system", "hi")
    await backend.at_least(version)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from pathlib import Path

from eventconfig.audit import AuditError, HistoryReader
from eventconfig.client import ConfigClient, LocalView
from eventconfig.errors import ReadTimeout
from eventconfig.gateway.access import AccessRules
from eventconfig.settings import Settings
from eventconfig.view.store import ViewSnapshot

log = logging.getLogger(__name__)
_ACTOR: ContextVar[str | None] = ContextVar("eventconfig_gateway_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Requests sent by an :class:`ActorClient` inside this block carry ``actor``."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


class ActorClient(ConfigClient):
    """A ConfigClient shared by every HTTP request, whose actor is the caller of the current one.

    Each HTTP request runs in its own asyncio context, so the actor set by :func:`acting_as` cannot
    leak into a concurrent request.
    """

    @property
    def actor(self) -> str | None:
        return _ACTOR.get() or self._default_actor

    @actor.setter
    def actor(self, value: str | None) -> None:
        self._default_actor = value


class HistoryReaders:
    """Started history readers, reused: starting one (a Kafka consumer) costs more than a typical read.

    A reader serves one read at a time; at most ``size`` run at once, the others wait for one.

        async with backend.history.reader() as reader:
            diff = await reader.diff(3, 7)
    """

    def __init__(self, settings: Settings, size: int = 4) -> None:
        self.settings = settings
        self._idle: list[HistoryReader] = []
        self._slots = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[HistoryReader]:
        async with self._slots:
            if self._idle:
                reader = self._idle.pop()
            else:
                reader = HistoryReader(self.settings)
                await reader.start()
            try:
                yield reader
            except AuditError:
                self._idle.append(reader)  # an answer such as "out of retention": the reader is fine
                raise
            except BaseException:
                await reader.stop()  # Kafka failed, or the caller went away mid-read: start afresh next time
                raise
            self._idle.append(reader)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for reader in idle:
            await reader.stop()


class Backend:
    """The service client, the local view, the history readers and the read policy of one gateway process.

        backend = Backend(settings); await backend.start()
        await backend.at_least(version)      # the local view holds `version` now
    """

    def __init__(self, settings: Settings, view_path: Path | None = None, *, request_timeout: float = 30.0) -> None:
        self.settings = settings
        self.client = ActorClient(settings, timeout=request_timeout)
        self.view = LocalView(settings, view_path or settings.data_dir / "gateway-view")
        self.history = HistoryReaders(settings)
        self.rules = AccessRules.from_settings(settings)  # what each caller may read (§14.2)
        self.started = False

    async def start(self) -> None:
        await self.client.start()
        try:
            await self.view.start()
        except BaseException:
            await self.client.stop()
            raise
        self.started = True
        log.info("gateway backend ready", extra={"fields": {"version": self.view.version}})

    async def stop(self) -> None:
        self.started = False
        await self.history.close()
        await self.view.stop()
        await self.client.stop()

    @property
    def version(self) -> int:
        """The last version the local view has applied (raises ViewError once the view died)."""
        return self.view.version

    def snapshot(self) -> ViewSnapshot:
        return self.view.materializer.store.snapshot()

    async def at_least(self, min_version: int | None) -> None:
        """Read-your-writes: wait until the local view holds ``min_version`` (ReadTimeout otherwise)."""
        if min_version is None or self.view.version >= min_version:
            return
        wait_s = self.settings.min_version_wait_ms / 1000
        if not await self.view.wait_for_version(min_version, wait_s):
            raise ReadTimeout(f"the gateway's view did not reach version {min_version} within {wait_s:g} s "
                              f"(it is at version {self.view.version})")

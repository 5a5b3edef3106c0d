"""What the gateway talks to: a ConfigClient for writes, a LocalView for reads, both as one unit.

Writes go to the service as requests, carrying the actor of the HTTP request that caused them: as
the claimed ``actor`` header, or, when the gateway has a signing key, signed as the gateway with an
``on-behalf-of`` header naming a caller it verified (docs/design.md §14.1: the writer checks that
the keyring lets the gateway delegate, then judges and records the caller). Reads
come from the gateway's own local view of the log (no request round trip); ``min_version`` waits
until that view has applied the version, which is how a caller reads its own writes.

Example::

    backend = Backend(settings, view_path)
    await backend.start()
    with acting_as(HttpUser("alice", verified=True)):
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
from eventconfig.gateway.auth import HttpUser
from eventconfig.model import ON_BEHALF_OF_HEADER, Headers
from eventconfig.settings import Settings
from eventconfig.signing import Signer, settings_signer
from eventconfig.view.store import ViewSnapshot
from eventconfig.writer.rules import ServiceRules

log = logging.getLogger(__name__)
_CALLER: ContextVar[HttpUser | None] = ContextVar("eventconfig_gateway_caller", default=None)


@contextlib.contextmanager
def acting_as(caller: HttpUser) -> Iterator[None]:
    """Requests sent by an :class:`ActorClient` inside this block are made for ``caller``."""
    token = _CALLER.set(caller)
    try:
        yield
    finally:
        _CALLER.reset(token)


class DelegatingSigner(Signer):
    """The gateway's signer: signs as the gateway, naming in ``on-behalf-of`` the verified caller of
    the current HTTP request. An unverified caller (development mode) is not named: the gateway
    does not vouch for it, so the write is the gateway's own."""

    def sign(self, value: bytes, headers: Headers, now_ms: int) -> Headers:
        caller = _CALLER.get()
        headers = [(n, v) for n, v in headers if n != ON_BEHALF_OF_HEADER]
        if caller is not None and caller.verified:
            headers.append((ON_BEHALF_OF_HEADER, caller.actor.encode()))
        return super().sign(value, headers, now_ms)


class ActorClient(ConfigClient):
    """A ConfigClient shared by every HTTP request, whose actor is the caller of the current one.

    Each HTTP request runs in its own asyncio context, so the actor set by :func:`acting_as` cannot
    leak into a concurrent request.
    """

    @property
    def actor(self) -> str | None:
        caller = _CALLER.get()
        return caller.actor if caller is not None else self._default_actor

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
        signer = settings_signer(settings)
        delegating = DelegatingSigner(signer.actor, signer.key, signer.deployment) if signer is not None else None
        self.client = ActorClient(settings, timeout=request_timeout, signer=delegating)
        self.view = LocalView(settings, view_path or settings.data_dir / "gateway-view")
        self.history = HistoryReaders(settings)
        self.rule_files = ServiceRules.from_settings(settings)  # what each caller may read (§14.2, §14.4)
        self.started = False

    @property
    def rules(self) -> AccessRules:
        """What callers may read, as the policy and keyring files say now."""
        return AccessRules.of(*self.rule_files.current())

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

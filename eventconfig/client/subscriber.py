"""``ConfigSubscriber``: keep handlers in step with the store through pokes, subscribe-then-fetch.

On start it first listens for pokes (its client's one Kafka consumer reads the notify topic beside
its answers, positioned at the end), then fetches the state its handlers need, then applies only
pokes newer than what it fetched, so a write racing the start is never missed. It holds the whole
maps it follows (``held.py``): a poke that carries its items and follows the last one it saw changes
them with no request at all; a poke without items (over ``poke_items_max_bytes``, or of the older
generation), a pair it does not hold, or a missed poke makes it fetch, reading at least the poke's
version (``min_version``), so even a lagging replica answers with the poked state.

Each fetch fails on its own (:func:`failure_kind`): a transient failure (timeout, Kafka, a service
failing over) is retried with backoff until it works, so no poke is passed over; a permanent one
(``too-large``, ``bad-request``, ``bad-operation``) is logged, counted in
``eventconfig_subscriber_fetch_failures_total`` and skips that pair only, until its next poke; an
unexpected one (``config-error``, anything else) is retried a few times, then treated as permanent.

Example::

    subscriber = ConfigSubscriber(settings)
    subscriber.on_change(reload_prompts, types=["prompt"])
    await subscriber.start()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError

from eventconfig import metrics
from eventconfig.client.client import ClientError, ConfigClient, kafka_unreachable
from eventconfig.client.handlers import HandlerHost, Handlers
from eventconfig.client.held import HeldConfig, Pair, plan
from eventconfig.client.hub import ConnectionHub
from eventconfig.codec import default_codec
from eventconfig.errors import BadOperation, BadRequest, CodecError, ReadTimeout, TooLarge
from eventconfig.settings import Settings
from eventconfig.tasks import Backoff, cancel

log = logging.getLogger(__name__)
T = TypeVar("T")


TRANSIENT, PERMANENT, UNEXPECTED = "transient", "permanent", "unexpected"
_PERMANENT = (TooLarge, BadRequest, BadOperation)  # the same request gets the same answer


def failure_kind(exc: BaseException) -> str:
    """How a fetch failure is handled: retried until it works, skipped, or retried a few times.

    ``config-error`` means "unexpected on the service's side": it may be a service going down (retry)
    or a request that always fails there (skip); only a few retries tell them apart.
    """
    if isinstance(exc, _PERMANENT):
        return PERMANENT
    if isinstance(exc, (ReadTimeout, ClientError, KafkaError, TimeoutError)):
        return TRANSIENT
    return UNEXPECTED


class ConfigSubscriber(HandlerHost):
    """Calls registered handlers with fresh config on start and after every relevant poke."""

    def __init__(self, settings: Settings, *, client: ConfigClient | None = None,
                 retry_initial_s: float = 0.2, retry_max_s: float = 10.0, unexpected_attempts: int = 5,
                 share_connections: bool = True) -> None:
        """``client``: a started client to fetch with (its connections carry the pokes too);
        None: one of its own, sharing the process's connections unless ``share_connections=False``."""
        self.settings = settings
        self.handlers = Handlers()
        self.version = 0
        self._client = client
        self._own_client = client is None
        self._share = share_connections
        self._retry = (retry_initial_s, retry_max_s)
        self._unexpected_attempts = unexpected_attempts
        self._held = HeldConfig()
        self._changed: set[Pair] = set()  # pairs a fetch found different, during one poke
        self._hub: ConnectionHub | None = None
        self._pokes: asyncio.Queue[Sequence[ConsumerRecord]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._codec = default_codec()

    async def start(self, timeout: float | None = None) -> None:
        """Subscribe to pokes, then fetch the state the handlers need (transient failures are retried,
        for at most ``timeout`` s when given).

        Raises ClientError (Kafka cannot be reached), ReadTimeout (no initial state within
        ``timeout``); whatever start opened is closed again first.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._subscribe_and_fetch()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, KafkaError):
                raise kafka_unreachable(self.settings, exc) from exc
            if isinstance(exc, TimeoutError):
                raise ReadTimeout(f"the subscriber got no initial state within {timeout:g} s; "
                                  "is the eventconfig service running?") from exc
            raise
        self._task = asyncio.create_task(self._follow(), name="config-subscriber")

    async def _subscribe_and_fetch(self) -> None:
        if self._client is None:
            self._client = ConfigClient(self.settings, share_connections=self._share)
            await self._client.start()
        hub = self._client.hub  # raises ClientError for a given client that was not started
        hub.add_listener(self._pokes.put_nowait)
        self._hub = hub  # subscribed: every later poke will be read
        await self._initial_fetch()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self._hub is not None:
            self._hub.remove_listener(self._pokes.put_nowait)
            self._hub = None
        if self._own_client and self._client is not None:
            await self._client.stop()
            self._client = None

    @property
    def client(self) -> ConfigClient:
        assert self._client is not None, "start() first"
        return self._client

    async def _initial_fetch(self) -> None:
        """Load every registered type; the version is the oldest state read (pokes after it apply).
        A type that fails for good is left out until its next poke."""
        versions = [v for type_ in sorted(self.handlers.typed)
                    if (v := await self._load_type(type_, None, "start")) is not None]
        if versions:
            self.version = min(versions)
        else:
            metrics.SUBSCRIBER_FETCHES.labels("start").inc()
            self.version = await self._fetch({"request": "version"}, self.client.version) or 0
        for workspace in sorted({ws for t in self._held.types for ws in self._held.workspaces(t)}):
            config = {t: v for t, v in self._held.config(workspace, self._held.types).items() if v}
            await self.handlers.deliver(workspace, config, self.version, startup=True)
        log.info("subscriber started", extra={"fields": {"version": self.version, "types": len(versions)}})

    async def _load_type(self, type_: str, min_version: int | None, reason: str) -> int | None:
        """Fetch and hold one type in every workspace; its version, or None when it failed for good."""
        metrics.SUBSCRIBER_FETCHES.labels(reason).inc()
        result = await self._fetch({"type": type_, "version": min_version},
                                   partial(self.client.get_values_all_workspaces_versioned, type_,
                                           min_version=min_version))
        if result is None:
            self._held.drop_type(type_)
            return None
        self._changed |= {(type_, ws) for ws in self._held.load_type(
            type_, ((i.workspace, i.key, i.value or "") for i in result.value), result.version)}
        return result.version

    async def _load_pair(self, pair: Pair, min_version: int, reason: str) -> None:
        """Fetch and hold one (type, workspace) pair (left unheld when it fails for good)."""
        type_, workspace = pair
        metrics.SUBSCRIBER_FETCHES.labels(reason).inc()
        result = await self._fetch({"type": type_, "workspace": workspace, "version": min_version},
                                   partial(self.client.get_values_versioned, workspace, type_,
                                           min_version=min_version))
        if result is None:
            self._held.drop_pair(pair)
        elif self._held.load_pair(pair, result.value, result.version):
            self._changed.add(pair)

    async def _follow(self) -> None:
        """Apply pokes in order for as long as the subscriber runs; nothing here may end the loop."""
        while True:
            for record in await self._pokes.get():
                try:
                    poke = self._codec.decode("ConfigPush", record.value or b"")
                except CodecError as exc:
                    log.warning("ignoring an undecodable poke at offset %d: %s", record.offset, exc)
                    continue
                if poke["version"] <= self.version:
                    continue
                try:
                    await self._apply(poke)
                except Exception:  # noqa: BLE001 - fetches handle their own failures: only a bug gets here
                    log.exception("applying poke %d failed", poke["version"])
                self.version = poke["version"]

    async def _apply(self, poke: dict[str, Any]) -> None:
        """Bring the held maps to the poke's version (items, or fetches, each retried on its own),
        then call the handlers once per workspace."""
        version = poke["version"]
        step = plan(poke, self._held, self.version, self.handlers.wants)
        self._changed = set()
        if step.refetch_all:
            log.info("a poke was missed; fetching everything held", extra={"fields": {
                "version": version, "previous_version": poke.get("previous_version"), "seen": self.version}})
            for type_ in self._held.types:
                await self._load_type(type_, version, "missed-poke")
            for pair in self._held.lone_pairs:
                await self._load_pair(pair, version, "missed-poke")
        for pair in step.fetch:
            await self._load_pair(pair, version, "no-items" if poke.get("items") is None else "not-held")
        for pair, items in step.apply.items():
            self._held.apply(pair, items, version)
        lifecycle = poke.get("workspace_changes")
        if lifecycle:
            await self.handlers.lifecycle(lifecycle["created"], lifecycle["deleted"], version)
        per_workspace: dict[str, list[str]] = {}
        for type_, workspace in sorted(set(step.deliver) | self._changed):
            if self._held.holds((type_, workspace)):
                per_workspace.setdefault(workspace, []).append(type_)
        for workspace, types in per_workspace.items():
            await self.handlers.deliver(workspace, self._held.config(workspace, types), version)

    async def _fetch(self, what: dict[str, Any], attempt: Callable[[], Awaitable[T]]) -> T | None:
        """``attempt()``, retried as :func:`failure_kind` says; None when it failed for good."""
        backoff = Backoff(*self._retry)
        unexpected = 0
        while True:
            try:
                return await attempt()
            except Exception as exc:  # noqa: BLE001 - every failure is classified, none is lost
                kind = failure_kind(exc)
                if kind == UNEXPECTED:
                    unexpected += 1
                    kind = PERMANENT if unexpected >= self._unexpected_attempts else kind
                metrics.SUBSCRIBER_FETCH_FAILURES.labels(kind).inc()
                fields = {**what, "error": str(exc), "error_class": type(exc).__name__, "kind": kind}
                if kind == PERMANENT:
                    log.error("fetch failed for good; skipped until the next change of this type and workspace",
                              extra={"fields": fields})
                    return None
                delay = backoff.next()
                log.warning("fetch failed; retrying", extra={"fields": {**fields, "retry_in_s": delay}})
                await asyncio.sleep(delay)

"""``ConfigSubscriber``: keep handlers in step with the store through pokes, subscribe-then-fetch.

On start it first positions a consumer at the end of the notify topic, then fetches the state its
handlers need, then applies only pokes newer than what it fetched, so a write racing the start is
never missed. A poke makes it refetch just the changed (type, workspace) pairs, reading at least
the poke's version (``min_version``), so even a lagging replica answers with the poked state.

Each (type, workspace) fetch fails on its own (:func:`failure_kind`): a transient failure (timeout,
Kafka, a service failing over) is retried with backoff until it works, so no poke is passed over; a
permanent one (``too-large``, ``bad-request``, ``bad-operation``) is logged, counted in
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
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig import metrics
from eventconfig.client.client import ClientError, ConfigClient, kafka_unreachable
from eventconfig.client.handlers import Config, HandlerHost, Handlers
from eventconfig.codec import default_codec
from eventconfig.errors import BadOperation, BadRequest, CodecError, ReadTimeout, TooLarge
from eventconfig.kafka.reading import IDLE_FETCH_WAIT_MS, committed_consumer
from eventconfig.model import is_reserved
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
                 retry_initial_s: float = 0.2, retry_max_s: float = 10.0, unexpected_attempts: int = 5) -> None:
        self.settings = settings
        self.handlers = Handlers()
        self.version = 0
        self._client = client
        self._own_client = client is None
        self._retry = (retry_initial_s, retry_max_s)
        self._unexpected_attempts = unexpected_attempts
        self._tp = TopicPartition(settings.topics.notify, 0)
        self._consumer: AIOKafkaConsumer | None = None
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
            self._client = ConfigClient(self.settings)
            await self._client.start()
        consumer = committed_consumer(self.settings, fetch_max_wait_ms=IDLE_FETCH_WAIT_MS)
        self._consumer = consumer
        await consumer.start()
        consumer.assign([self._tp])
        await consumer.seek_to_end(self._tp)
        await consumer.position(self._tp)  # subscribed: every later poke will be read
        await self._initial_fetch()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
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
        per_workspace: dict[str, Config] = {}
        versions = []
        for type_ in sorted(self.handlers.typed):
            result = await self._fetch(
                {"type": type_}, partial(self.client.get_values_all_workspaces_versioned, type_))
            if result is None:
                continue
            versions.append(result.version)
            for item in result.value:
                per_workspace.setdefault(item.workspace, {}).setdefault(type_, {})[item.key] = item.value or ""
        if versions:
            self.version = min(versions)
        else:
            self.version = await self._fetch({"request": "version"}, self.client.version) or 0
        for workspace, config in sorted(per_workspace.items()):
            await self.handlers.deliver(workspace, config, self.version, startup=True)
        log.info("subscriber started", extra={"fields": {"version": self.version, "types": len(versions)}})

    async def _follow(self) -> None:
        """Apply pokes in order for as long as the subscriber runs; nothing here may end the loop."""
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(self._tp, timeout_ms=1000)
            except KafkaError as exc:
                log.warning("reading pokes failed (%s); retrying", exc)
                await asyncio.sleep(self._retry[0])
                continue
            for record in batches.get(self._tp, []):
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
        """Fetch everything the poke touched first (each fetch retried on its own), then call the
        handlers once per workspace."""
        version = poke["version"]
        per_workspace: dict[str, Config] = {}
        for type_, workspaces in poke["changes"].items():
            if not self.handlers.wants(type_):
                continue
            for workspace in workspaces:
                if is_reserved(workspace):
                    continue
                values = await self._fetch(
                    {"type": type_, "workspace": workspace, "version": version},
                    partial(self.client.get_values, workspace, type_, min_version=version))
                if values is not None:
                    per_workspace.setdefault(workspace, {})[type_] = values
        lifecycle = poke.get("workspace_changes")
        if lifecycle:
            await self.handlers.lifecycle(lifecycle["created"], lifecycle["deleted"], version)
        for workspace, config in per_workspace.items():
            await self.handlers.deliver(workspace, config, version)

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

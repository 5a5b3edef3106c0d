"""``ConfigSubscriber``: keep handlers in step with the store through pokes, subscribe-then-fetch.

On start it first positions a consumer at the end of the notify topic, then fetches the state its
handlers need, then applies only pokes newer than what it fetched, so a write racing the start is
never missed. A poke makes it refetch just the changed (type, workspace) pairs, reading at least
the poke's version (``min_version``), so even a lagging replica answers with the poked state. A
failed fetch is retried with backoff and the poke is not passed over.

Example::

    subscriber = ConfigSubscriber(settings)
    subscriber.on_change(reload_prompts, types=["prompt"])
    await subscriber.start()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from eventconfig.client.client import ConfigClient
from eventconfig.client.handlers import Config, HandlerHost, Handlers
from eventconfig.codec import default_codec
from eventconfig.errors import CodecError, EventConfigError
from eventconfig.kafka.reading import committed_consumer
from eventconfig.model import is_reserved
from eventconfig.settings import Settings
from eventconfig.tasks import cancel

log = logging.getLogger(__name__)
T = TypeVar("T")


class ConfigSubscriber(HandlerHost):
    """Calls registered handlers with fresh config on start and after every relevant poke."""

    def __init__(self, settings: Settings, *, client: ConfigClient | None = None,
                 retry_initial_s: float = 0.2, retry_max_s: float = 10.0) -> None:
        self.settings = settings
        self.handlers = Handlers()
        self.version = 0
        self._client = client
        self._own_client = client is None
        self._retry = (retry_initial_s, retry_max_s)
        self._tp = TopicPartition(settings.topics.notify, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._codec = default_codec()

    async def start(self) -> None:
        """Subscribe to pokes, then fetch the state the handlers need (retried until it succeeds)."""
        try:
            if self._client is None:
                self._client = ConfigClient(self.settings)
                await self._client.start()
            consumer = committed_consumer(self.settings)
            self._consumer = consumer
            await consumer.start()
            consumer.assign([self._tp])
            await consumer.seek_to_end(self._tp)
            await consumer.position(self._tp)  # subscribed: every later poke will be read
            await self._retrying("initial fetch", self._initial_fetch)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._follow(), name="config-subscriber")

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
        """Load every registered type; the version is the oldest state read (pokes after it apply)."""
        per_workspace: dict[str, Config] = {}
        versions = []
        for type_ in sorted(self.handlers.typed):
            result = await self.client.get_values_all_workspaces_versioned(type_)
            versions.append(result.version)
            for item in result.value:
                per_workspace.setdefault(item.workspace, {}).setdefault(type_, {})[item.key] = item.value or ""
        self.version = min(versions) if versions else await self.client.version()
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
                    await self._retrying(f"poke {poke['version']}", lambda p=poke: self._apply(p))
                except Exception:  # noqa: BLE001 - a bug must not silence every later change
                    log.exception("applying poke %d failed; its changes arrive with the next poke of "
                                  "the same type and workspace", poke["version"])
                self.version = poke["version"]

    async def _apply(self, poke: dict[str, Any]) -> None:
        """Fetch everything the poke touched first, so a retry never calls a handler twice."""
        version = poke["version"]
        per_workspace: dict[str, Config] = {}
        for type_, workspaces in poke["changes"].items():
            if not self.handlers.wants(type_):
                continue
            for workspace in workspaces:
                if not is_reserved(workspace):
                    values = await self.client.get_values(workspace, type_, min_version=version)
                    per_workspace.setdefault(workspace, {})[type_] = values
        lifecycle = poke.get("workspace_changes")
        if lifecycle:
            await self.handlers.lifecycle(lifecycle["created"], lifecycle["deleted"], version)
        for workspace, config in per_workspace.items():
            await self.handlers.deliver(workspace, config, version)

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        delay, ceiling = self._retry
        while True:
            try:
                return await attempt()
            except (EventConfigError, KafkaError, asyncio.TimeoutError) as exc:
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, ceiling)

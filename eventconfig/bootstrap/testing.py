"""An in-memory config service for testing initialisers and the wake cycle without Kafka.

:class:`MemoryConfig` answers requests with the writer's own pure request handler over a dict, so
its clients behave like a real :class:`~eventconfig.client.ConfigClient` (versions, compare-and-set
conflicts, name checks) with no broker. Set ``down = True`` to make clients fail to connect.

Example::

    memory = MemoryConfig()
    bootstrapper = Bootstrapper(Settings(), entries, client_factory=memory.client)
    report = await bootstrapper.run_once()
    memory.config("__template__")                       # {type: {key: value}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventconfig.client import ClientError, ConfigClient, build_request, check_response
from eventconfig.codec import default_codec
from eventconfig.model import Entry, ItemKey
from eventconfig.settings import Settings
from eventconfig.view.reader import DictReader, workspace_config
from eventconfig.writer.handler import Context, Limits, handle_request


class MemoryConfig:
    """The state and request log of one in-memory service; ``client`` makes clients of it."""

    def __init__(self) -> None:
        self.reader = DictReader()
        self.down = False
        self.requests: list[dict[str, Any]] = []  # every request handled, decoded, in order

    def client(self, settings: Settings | None = None, timeout: float = 30.0) -> MemoryConfigClient:
        """A client of this service (the signature of the bootstrapper's ``client_factory``)."""
        return MemoryConfigClient(self, settings or Settings())

    @property
    def version(self) -> int:
        return self.reader.version

    def config(self, workspace: str) -> dict[str, dict[str, str]]:
        """``{type: {key: value}}`` of one workspace, read directly."""
        return workspace_config(self.reader, workspace)

    def writes(self, workspace: str | None = None) -> list[dict[str, Any]]:
        """The successful-or-not put/delete requests, optionally of one workspace."""
        return [r for r in self.requests if r["operation"] in ("put", "delete")
                and (workspace is None or r["workspace"] == workspace)]

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Handle one decoded request like the writer would; RequestError on a bad one."""
        self.requests.append(request)
        ctx = Context(self.reader, Limits(), self.reader.version, now_ms=0, request_id=str(len(self.requests)))
        outcome = handle_request(request, ctx)
        if outcome.version is not None:
            items: dict[ItemKey, Entry] = dict(self.reader.items)
            for item, entry in outcome.changes.items():
                if entry is None:
                    items.pop(item, None)
                else:
                    items[item] = entry
            self.reader = DictReader(items, outcome.version)
        return dict(outcome.response)


class MemoryConfigClient(ConfigClient):
    """A ConfigClient whose requests go to a :class:`MemoryConfig` instead of Kafka."""

    def __init__(self, service: MemoryConfig, settings: Settings) -> None:
        super().__init__(settings)
        self.service = service
        self.started = False

    async def start(self) -> None:
        if self.service.down:
            raise ClientError("in-memory config service is down")
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def request(self, operation: str, workspace: str = "", *, keys: Iterable[Any] = (), type: str = "",
                      values: Iterable[Any] = (), min_version: int | None = None,
                      timeout: float | None = None) -> dict[str, Any]:
        if not self.started:
            raise ClientError("ConfigClient is not started; use `async with ConfigClient(...)` or await start()")
        if self.service.down:
            raise ClientError("in-memory config service is down")
        codec = default_codec()  # through the codec, so requests carry every field with its default
        message = build_request(operation, workspace, keys=keys, type=type, values=values, min_version=min_version)
        response = self.service.handle(codec.decode("ConfigRequest", codec.encode("ConfigRequest", message)))
        return dict(check_response(response))

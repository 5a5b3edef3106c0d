"""``LocalView``: a process's own materialized copy of the store, read with no request round trip.

It runs the same :class:`~eventconfig.view.materializer.Materializer` as the service over the log
topic, into its own RocksDB folder, and persists its offset there: a restart resumes where it
stopped instead of replaying. Reads are local: hot items come from an exact in-process cache
(``local_view_cache_items``, over a million gets per second), the rest from RocksDB (over a hundred
thousand per second). The same handlers
as :class:`ConfigSubscriber` can be registered; they are called from the view itself after each
applied version, in order.

Example::

    view = LocalView(settings, Path("/var/lib/myservice/config-view"))
    await view.start()
    prompt = view.get("acme", "prompt", "system")
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiokafka.errors import KafkaError

from eventconfig.client.client import kafka_unreachable
from eventconfig.client.handlers import Config, HandlerHost, Handlers
from eventconfig.errors import ViewError
from eventconfig.model import WORKSPACE_TYPE, WORKSPACES_WORKSPACE, Entry
from eventconfig.settings import Settings
from eventconfig.view.apply import ViewWrites
from eventconfig.view.materializer import Materializer
from eventconfig.view.reader import workspace_config
from eventconfig.tasks import cancel, off_loop

log = logging.getLogger(__name__)


class LocalView(HandlerHost):
    """Local reads of the whole store, kept current from the log."""

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        # Its lag is exported as eventconfig_log_lag_records{view="local"}.
        self.materializer = Materializer(settings, path or settings.data_dir / "local-view", name="local",
                                         cache_items=settings.local_view_cache_items)
        self.handlers = Handlers()
        self._changes: asyncio.Queue[ViewWrites] = asyncio.Queue()
        self.materializer.add_listener(self._changes.put_nowait)  # it only announces once caught up
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 600.0) -> None:
        """Open (or rebuild) the view, catch up with the log, and give typed handlers the state.

        Raises ViewError (the view cannot be opened or did not catch up within ``timeout`` s),
        TopologyError (the log topic is missing or unsafe) or ClientError (Kafka cannot be reached);
        whatever start opened is closed again first.
        """
        try:
            await self.materializer.start()
            await self.materializer.wait_caught_up(timeout)
            await self._deliver_state()
        except BaseException as exc:
            await self.stop()
            typed = _start_error(exc, self.materializer.settings)
            if typed is exc:
                raise
            raise typed from exc
        self._task = asyncio.create_task(self._dispatch(), name="local-view-handlers")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.materializer.stop()

    # --- reads ---------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.materializer.version

    async def wait_for_version(self, version: int, timeout: float) -> bool:
        """Read-your-writes: True once the view holds ``version`` (e.g. from a put's response)."""
        return await self.materializer.wait_for_version(version, timeout)

    # Point reads pass a plain tuple (equal to an ItemKey, cheaper to build): hot keys are served
    # from the view's exact item cache (local_view_cache_items) at memory speed.
    def get_item(self, workspace: str, type: str, key: str) -> Entry | None:
        return self.materializer.store.get((workspace, type, key))

    def get(self, workspace: str, type: str, key: str) -> str | None:
        entry = self.materializer.store.get((workspace, type, key))
        return entry.value if entry else None

    def keys(self, workspace: str, type: str) -> list[str]:
        with self.materializer.store.snapshot() as view:
            return [key for key, _ in view.scan_type(workspace, type)]

    def get_values(self, workspace: str, type: str) -> dict[str, str]:
        with self.materializer.store.snapshot() as view:
            return {key: entry.value for key, entry in view.scan_type(workspace, type)}

    def get_values_all_workspaces(self, type: str) -> list[tuple[str, str, str]]:
        """(workspace, key, value) of one type in every workspace, reserved ones included."""
        with self.materializer.store.snapshot() as view:
            return [(ws, key, entry.value) for ws, key, entry in view.scan_all_workspaces(type)]

    def get_all(self, workspace: str) -> Config:
        with self.materializer.store.snapshot() as view:
            return workspace_config(view, workspace)

    # --- handlers ------------------------------------------------------------------------------

    async def _deliver_state(self) -> None:
        with self.materializer.store.snapshot() as view:
            per_workspace: dict[str, Config] = {}
            for type_ in sorted(self.handlers.typed):
                for workspace, key, entry in view.scan_all_workspaces(type_):
                    per_workspace.setdefault(workspace, {}).setdefault(type_, {})[key] = entry.value
            version = view.version
        for workspace, config in sorted(per_workspace.items()):
            await self.handlers.deliver(workspace, config, version, startup=True)

    async def _dispatch(self) -> None:
        while True:
            writes = await self._changes.get()
            try:
                await self._deliver_changes(writes)
            except Exception:  # noqa: BLE001 - one failure must not stop every later notification
                log.exception("delivering the changes of version %d failed", writes.version)

    async def _deliver_changes(self, writes: ViewWrites) -> None:
        pairs = {(item.workspace, item.type) for item in writes.ops if self.handlers.wants(item.type)}
        lifecycle = [(item.key, entry is not None) for item, entry in writes.ops.items()
                     if (item.workspace, item.type) == (WORKSPACES_WORKSPACE, WORKSPACE_TYPE)]
        await self.handlers.lifecycle([k for k, alive in lifecycle if alive],
                                      [k for k, alive in lifecycle if not alive], writes.version)
        per_workspace: dict[str, Config] = {}
        for workspace, type_ in sorted(pairs):  # a scan of a large type runs off the loop
            per_workspace.setdefault(workspace, {})[type_] = await off_loop(self.get_values, workspace, type_)
        for workspace, config in per_workspace.items():
            await self.handlers.deliver(workspace, config, writes.version)


def _start_error(exc: BaseException, settings: Settings) -> BaseException:
    """The typed error an embedding application catches for a failed start (others pass unchanged)."""
    if isinstance(exc, TimeoutError):
        return ViewError(f"the local view did not catch up with {settings.topics.log}: {exc}")
    if isinstance(exc, KafkaError):
        return kafka_unreachable(settings, exc)
    return exc

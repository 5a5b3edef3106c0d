"""Change handlers shared by :class:`ConfigSubscriber` and :class:`LocalView`.

A config handler is ``async handler(workspace, config, version)`` where ``config`` is
``{type: {key: value}}`` limited to the types it registered for (an empty dict for a type means
"all gone"); a handler registered without types receives every changed type. Workspace handlers
are ``async handler(workspace, version)``. Reserved workspaces (``_`` prefix) are never delivered.
A handler that raises is logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Self

from eventconfig.model import is_reserved

log = logging.getLogger(__name__)

Config = dict[str, dict[str, str]]
ConfigHandler = Callable[[str, Config, int], Awaitable[None]]
WorkspaceHandler = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True)
class _Registration:
    handler: ConfigHandler
    types: frozenset[str] | None  # None: every type


class Handlers:
    """The registered handlers and the rules for who gets what."""

    def __init__(self) -> None:
        self._config: list[_Registration] = []
        self._created: list[WorkspaceHandler] = []
        self._deleted: list[WorkspaceHandler] = []

    def on_change(self, handler: ConfigHandler, types: Iterable[str] | None = None) -> None:
        self._config.append(_Registration(handler, frozenset(types) if types else None))

    def on_workspace_created(self, handler: WorkspaceHandler) -> None:
        self._created.append(handler)

    def on_workspace_deleted(self, handler: WorkspaceHandler) -> None:
        self._deleted.append(handler)

    @property
    def typed(self) -> frozenset[str]:
        """Every type some handler registered for (what a startup fetch must load)."""
        return frozenset(t for r in self._config if r.types for t in r.types)

    def wants(self, type_: str) -> bool:
        return any(r.types is None or type_ in r.types for r in self._config)

    async def deliver(self, workspace: str, config: Config, version: int, *, startup: bool = False) -> None:
        """Call each handler with its share of ``config``; at startup untyped handlers get nothing."""
        if is_reserved(workspace):
            return
        for registration in self._config:
            if registration.types is None:
                share = {} if startup else config
            else:
                share = {t: v for t, v in config.items() if t in registration.types}
            if share:
                await _call(registration.handler, workspace, share, version)

    async def lifecycle(self, created: Iterable[str], deleted: Iterable[str], version: int) -> None:
        for workspace in created:
            for handler in self._created:
                await _call(handler, workspace, version)
        for workspace in deleted:
            for handler in self._deleted:
                await _call(handler, workspace, version)


async def _call(handler: Callable[..., Awaitable[None]], *args: object) -> None:
    try:
        await handler(*args)
    except Exception:  # noqa: BLE001 - one broken handler must not starve the others
        log.exception("config handler %s failed", getattr(handler, "__qualname__", handler))


class HandlerHost:
    """What :class:`ConfigSubscriber` and :class:`LocalView` share: handler registration, and use as
    an async context manager around their ``start``/``stop``."""

    handlers: Handlers

    def on_change(self, handler: ConfigHandler, types: Iterable[str] | None = None) -> None:
        """Register ``async handler(workspace, config, version)`` for ``types`` (None: every type)."""
        self.handlers.on_change(handler, types)

    def on_workspace_created(self, handler: WorkspaceHandler) -> None:
        self.handlers.on_workspace_created(handler)

    def on_workspace_deleted(self, handler: WorkspaceHandler) -> None:
        self.handlers.on_workspace_deleted(handler)

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""The initialiser contract: subclass :class:`Initialiser`, implement ``run(ctx, old_flag, new_flag)``.

An initialiser brings one part of a deployment to its configured state and must be idempotent: it
may run twice (a crash between its work and the flag write, or a deliberate flag change). Raising
means "not done": the flag is not stored and the bootstrapper retries on its next wake.

Parameters are keyword arguments of the constructor, taken from the entry's ``params``; a name the
constructor does not accept is a fatal configuration error (declare ``**params`` to accept anything).

Example::

    class AuditRetention(Initialiser):
        def __init__(self, *, days: int = 30) -> None:
            self.days = days

        async def run(self, ctx, old_flag, new_flag):
            await ctx.config.put("__system__", "audit", "retention-days", str(self.days))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from eventconfig.bootstrap.errors import BootstrapError
from eventconfig.settings import Settings

if TYPE_CHECKING:
    from eventconfig.client import ConfigClient

# A flag is any JSON scalar but null; it is stored as json.dumps(flag) and compared with ==.
Flag = str | int | float | bool


@dataclass(frozen=True)
class InitContext:
    """What one initialiser gets for one run: its name, a scoped logger, the settings and a config client.

    Pre-gate initialisers (``wait_for_services = False``) run before the config service is known to be
    up, so they get no client: reading ``ctx.config`` there raises a clear error.
    """

    name: str
    logger: logging.Logger
    settings: Settings
    client: ConfigClient | None = field(default=None, repr=False)

    @property
    def config(self) -> ConfigClient:
        if self.client is None:
            raise BootstrapError(f"initialiser {self.name!r} runs before the service gate and has no config "
                                 "client; set wait_for_services = True to use the config service")
        return self.client


class Initialiser:
    """Base of every initialiser; the entry's ``name`` and ``flag`` live in the bootstrap file, not here.

        class Hello(Initialiser):
            async def run(self, ctx, old_flag, new_flag):
                ctx.logger.info("hello from %s (%s -> %s)", ctx.name, old_flag, new_flag)
    """

    # False: run before the service gate, without a config client, on every wake until it succeeds
    # once in this process (its completion is not stored in config, which may not exist yet).
    wait_for_services: ClassVar[bool] = True

    async def run(self, ctx: InitContext, old_flag: Flag | None, new_flag: Flag) -> None:
        """Do the work; ``old_flag`` is the flag of the last success (None: never succeeded)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Configured:
    """One entry of the initialiser list, validated: a unique name, its flag and the built initialiser."""

    name: str
    flag: Flag
    initialiser: Initialiser

    @property
    def pre_gate(self) -> bool:
        return not self.initialiser.wait_for_services

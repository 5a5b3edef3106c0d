"""The bootstrapper: a long-running reconciler that converges a deployment, then idles (docs/design.md §8).

One wake:

1. pre-gate initialisers (``wait_for_services = False``), in order, with no config client; each runs
   on every wake until it succeeds once in this process (nothing is stored: config may not exist yet);
2. the gate: open a ConfigClient and read every post-gate flag in ``__system__``/``init-state`` with
   one ``get`` under a short timeout; that round trip proves the service answers;
3. if the gate is open, post-gate initialisers in order: skipped when the stored flag equals the
   configured one, otherwise run with ``(ctx, old_flag, new_flag)``, the flag stored only on success
   (a compare-and-set on the version read at the gate). One failure never stops the others;
4. sleep ``gate_down`` (gate closed), ``converging`` (something ran or failed) or ``steady``.

Example::

    bootstrapper = Bootstrapper.from_file(settings, "bootstrap.yaml")
    report = await bootstrapper.run_once()        # report.ran, report.failed, report.sleep
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from eventconfig.bootstrap.base import Configured, Flag, InitContext
from eventconfig.bootstrap.errors import SpecError
from eventconfig.bootstrap.spec import build_initialisers, load_entries
from eventconfig.client import ConfigClient, ConfigItem
from eventconfig.errors import EventConfigError
from eventconfig.settings import Settings

log = logging.getLogger(__name__)
# Initialisers log as eventconfig.bootstrap.init.<name>, so one of them can be filtered or raised alone.
init_log = logging.getLogger("eventconfig.bootstrap.init")

STATE_WORKSPACE = "__system__"
STATE_TYPE = "init-state"

ClientFactory = Callable[[Settings, float], ConfigClient]


class Status(str, Enum):
    RAN = "ran"
    SKIPPED = "skipped"
    FAILED = "failed"
    HELD = "held"  # a post-gate initialiser while the gate is closed


@dataclass(frozen=True)
class Result:
    """What happened to one initialiser in one wake, and why."""

    name: str
    status: Status
    reason: str
    old_flag: Flag | None = None
    new_flag: Flag | None = None


@dataclass(frozen=True)
class CycleReport:
    """One wake: a result per initialiser (in the order they were considered), the gate, the next sleep.

    ``gate`` is None when there is no post-gate initialiser, so no gate was needed.
    """

    results: tuple[Result, ...]
    gate: bool | None
    sleep: float
    gate_error: str | None = None

    def names(self, status: Status) -> list[str]:
        return [r.name for r in self.results if r.status is status]

    ran = property(lambda self: self.names(Status.RAN), doc="Names that ran and succeeded, in order.")
    skipped = property(lambda self: self.names(Status.SKIPPED), doc="Names already done, in order.")
    failed = property(lambda self: self.names(Status.FAILED), doc="Names that failed; retried next wake.")
    held = property(lambda self: self.names(Status.HELD), doc="Post-gate names held back by a closed gate.")

    @property
    def complete(self) -> bool:
        """Nothing failed and nothing was held back: every initialiser ran or was already done."""
        return not self.failed and not self.held

    def __getitem__(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)


@dataclass(frozen=True)
class Cadence:
    """Sleeps between wakes and the time limits of one wake, in seconds (TrustGraph's 5 / 15 / 300)."""

    gate_down: float = 5.0
    converging: float = 15.0
    steady: float = 300.0
    gate_timeout: float = 10.0  # opening the client and the gate's round trip
    run_timeout: float = 300.0  # one initialiser's run; a hung one must not stall the others forever
    request_timeout: float = 30.0  # each config request an initialiser makes

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise SpecError(f"bootstrap cadence {name} must be a positive number of seconds, got {value!r}")


def _default_client(settings: Settings, timeout: float) -> ConfigClient:
    return ConfigClient(settings, timeout=timeout, actor="bootstrap")


class Bootstrapper:
    """Runs initialisers until the deployment matches their flags; embeddable in any asyncio program.

        bootstrapper = Bootstrapper(settings, [{"class": "...TemplateSeed", "name": "seed", "flag": "v1",
                                                "params": {"config_file": "seed.json"}}])
        await bootstrapper.run()          # until bootstrapper.stop()

    ``initialisers`` holds file-style mappings or already built :class:`Configured` entries; either way
    the whole list is validated here (SpecError) before anything runs.
    """

    def __init__(self, settings: Settings, initialisers: Iterable[Mapping[str, Any] | Configured], *,
                 cadence: Cadence | None = None, client_factory: ClientFactory = _default_client) -> None:
        self.settings = settings
        self.entries = build_initialisers(initialisers)
        self.cadence = cadence or Cadence()
        self.last_report: CycleReport | None = None
        self._client_factory = client_factory
        self._pre_gate_done: set[str] = set()
        self._stopping = asyncio.Event()

    @classmethod
    def from_file(cls, settings: Settings, path: str | Path, **kwargs: Any) -> Bootstrapper:
        """A bootstrapper for the initialiser file at ``path`` (YAML or JSON)."""
        return cls(settings, load_entries(path), **kwargs)

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wake, reconcile, sleep, until :meth:`stop` (a wake in progress finishes first)."""
        self._stopping.clear()
        log.info("bootstrapper started", extra={"fields": {"initialisers": ",".join(e.name for e in self.entries)}})
        while not self._stopping.is_set():
            report = await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), report.sleep)
        log.info("bootstrapper stopped")

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> CycleReport:
        """One wake: pre-gate initialisers, the gate, post-gate initialisers; returns what happened."""
        results = [await self._pre_gate(entry) for entry in self.entries if entry.pre_gate]
        post = [entry for entry in self.entries if not entry.pre_gate]
        gate: bool | None = None
        gate_error: str | None = None
        if post:
            client = self._client_factory(self.settings, self.cadence.request_timeout)
            try:
                stored = await self._open_gate(client, [e.name for e in post])
            except Exception as exc:  # the gate's whole job is to turn "not reachable yet" into a wait
                gate, gate_error = False, self._gate_error(exc)
                log.info("service gate closed; post-gate initialisers held back",
                         extra={"fields": {"reason": gate_error, "held": ",".join(e.name for e in post)}})
                results += [Result(e.name, Status.HELD, f"service gate closed: {gate_error}", None, e.flag)
                            for e in post]
            else:
                gate = True
                for entry in post:
                    results.append(await self._post_gate(entry, client, stored.get(entry.name)))
            finally:
                with contextlib.suppress(Exception):
                    await client.stop()
        report = CycleReport(tuple(results), gate, self._next_sleep(gate, results), gate_error)
        self._log_report(report)
        self.last_report = report
        return report

    def _gate_error(self, exc: Exception) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self.cadence.gate_timeout:g} s; is the config service running?"
        return f"{type(exc).__name__}: {exc}"

    def _next_sleep(self, gate: bool | None, results: list[Result]) -> float:
        if gate is False:
            return self.cadence.gate_down
        if any(r.status in (Status.RAN, Status.FAILED) for r in results):
            return self.cadence.converging
        return self.cadence.steady

    # --- one initialiser -----------------------------------------------------------------------

    async def _pre_gate(self, entry: Configured) -> Result:
        if entry.name in self._pre_gate_done:
            return self._skip(entry, None, "pre-gate; already succeeded in this process")
        log.info("running pre-gate initialiser", extra={"fields": {"name": entry.name, "flag": _show(entry.flag)}})
        failure = await self._invoke(entry, None, None)
        if failure is not None:
            return failure
        self._pre_gate_done.add(entry.name)
        return Result(entry.name, Status.RAN, "pre-gate; not tracked in config", None, entry.flag)

    async def _open_gate(self, client: ConfigClient, names: list[str]) -> dict[str, ConfigItem]:
        """The stored flag items of ``names`` (missing ones absent), read in one round trip."""
        async with asyncio.timeout(self.cadence.gate_timeout):
            await client.start()
            items = await client.get_many(STATE_WORKSPACE, [(STATE_TYPE, name) for name in names])
        return {item.key: item for item in items if item.value is not None}

    async def _post_gate(self, entry: Configured, client: ConfigClient, stored: ConfigItem | None) -> Result:
        old = None if stored is None else _parse_flag(stored.value)
        if stored is not None and _same_flag(old, entry.flag):
            return self._skip(entry, old, f"flag {_show(entry.flag)} already applied")
        if stored is None:
            log.info("running initialiser for the first time",
                     extra={"fields": {"name": entry.name, "flag": _show(entry.flag)}})
        else:
            log.info("re-running initialiser: its flag changed (a deliberate re-run)",
                     extra={"fields": {"name": entry.name, "old_flag": _show(old), "new_flag": _show(entry.flag)}})
        failure = await self._invoke(entry, client, old)
        if failure is not None:
            return failure
        try:  # compare-and-set: a concurrent bootstrapper's flag write is never silently overwritten
            await client.put(STATE_WORKSPACE, STATE_TYPE, entry.name, json.dumps(entry.flag),
                             if_version=0 if stored is None else stored.version)
        except Exception as exc:
            reason = f"ran, but storing its flag failed, so it re-runs next wake: {type(exc).__name__}: {exc}"
            log.warning("initialiser flag not stored", extra={"fields": {"name": entry.name, "reason": reason}})
            return Result(entry.name, Status.FAILED, reason, old, entry.flag)
        return Result(entry.name, Status.RAN, "first run" if stored is None else "flag changed", old, entry.flag)

    async def _invoke(self, entry: Configured, client: ConfigClient | None, old: Flag | None) -> Result | None:
        """Run one initialiser; None on success, a FAILED result (already logged) otherwise."""
        ctx = InitContext(entry.name, init_log.getChild(entry.name), self.settings, client)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.cadence.run_timeout):
                await entry.initialiser.run(ctx, old, entry.flag)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and time.monotonic() - started >= self.cadence.run_timeout:
                reason = f"did not finish within {self.cadence.run_timeout:g} s"
            else:
                reason = f"{type(exc).__name__}: {exc}"
            # Our own errors are expected states ("template not seeded yet"): no traceback for those.
            log.log(logging.WARNING if isinstance(exc, EventConfigError) else logging.ERROR,
                    "initialiser failed; retrying next wake", exc_info=not isinstance(exc, EventConfigError),
                    extra={"fields": {"name": entry.name, "reason": reason}})
            return Result(entry.name, Status.FAILED, reason, old, entry.flag)
        log.info("initialiser done", extra={"fields": {"name": entry.name, "flag": _show(entry.flag),
                                                        "took_s": round(time.monotonic() - started, 3)}})
        return None

    def _skip(self, entry: Configured, old: Flag | None, reason: str) -> Result:
        log.info("initialiser skipped", extra={"fields": {"name": entry.name, "reason": reason}})
        return Result(entry.name, Status.SKIPPED, reason, old, entry.flag)

    def _log_report(self, report: CycleReport) -> None:
        fields: dict[str, Any] = {s.value: ",".join(report.names(s)) for s in Status if report.names(s)}
        if report.gate is False:
            fields["gate_error"] = report.gate_error
        log.info("wake done", extra={"fields": {**fields, "next_wake_s": report.sleep}})


def _parse_flag(raw: str | None) -> Flag | None:
    """A stored flag: JSON as written by the bootstrapper, or a raw string someone wrote by hand."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _same_flag(old: Any, new: Flag) -> bool:
    # By JSON text, not ==: True == 1 in Python, yet changing a flag from 1 to true is a change.
    return json.dumps(old) == json.dumps(new)


def _show(flag: Any) -> str:
    return json.dumps(flag)

"""The keyring and the policy as their files say now (docs/design.md §14.4): rules that change while running.

A process reads each file at start (an unreadable one stops it), then again when the file changes
(its inode, size or modification time, looked at no more often than every ``check_s`` seconds, on
use), on SIGHUP (:func:`reload_all`) and, in the writer, at every take-over, so a standby that becomes
active never judges with the file it started with. A changed file that does not parse keeps the
previous rules in force: one error log line and ``eventconfig_rules_reload_failures_total``.

Example::

    rules = ServiceRules.from_settings(settings)
    keyring, policy = rules.current()          # re-read if a file changed
    keyring, policy = rules.read_afresh()      # at take-over
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from eventconfig import metrics
from eventconfig.errors import EventConfigError
from eventconfig.settings import Settings
from eventconfig.writer.auth import Keyring
from eventconfig.writer.policy import Policy

log = logging.getLogger(__name__)
T = TypeVar("T")
Stamp = tuple[int, int, int] | None  # (inode, size, mtime in ns); None: the file cannot be looked at
_WATCHED: weakref.WeakSet[WatchedFile[object]] = weakref.WeakSet()


class WatchedFile(Generic[T]):
    """One rules file and what it said when last read successfully."""

    def __init__(self, path: str, load: Callable[[str], T], what: str, *, check_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.what, self._load, self._check_s, self._clock = path, what, load, check_s, clock
        self._stamp = _stamp(path)
        self.value = load(path)
        self._checked = clock()
        _WATCHED.add(self)  # type: ignore[arg-type]

    def current(self) -> T:
        """The rules, re-read first when the file changed since it was last looked at."""
        now = self._clock()
        if now - self._checked >= self._check_s:
            self._checked = now
            if _stamp(self.path) != self._stamp:
                self.reload()
        return self.value

    def reload(self) -> bool:
        """Read the file now; on failure keep the previous rules (and do not retry until it changes)."""
        self._stamp, self._checked = _stamp(self.path), self._clock()
        try:
            self.value = self._load(self.path)
        except EventConfigError as exc:
            metrics.RULES_RELOAD_FAILURES.labels(self.what).inc()
            log.error("the %s file did not reload; the previous rules stay in force: %s", self.what, exc)
            return False
        log.info("reloaded the %s file", self.what, extra={"fields": {"path": self.path}})
        return True


def reload_all() -> None:
    """Re-read every rules file of this process (the SIGHUP handler)."""
    for watched in list(_WATCHED):
        watched.reload()


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@dataclass(frozen=True)
class ServiceRules:
    """The keyring (``auth_keyring_file``) and policy (``policy_file``) of one process; either may be off."""

    keyring: WatchedFile[Keyring] | None
    policy: WatchedFile[Policy] | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceRules:
        keyring = WatchedFile(settings.auth_keyring_file, Keyring.load, "keyring") \
            if settings.auth_keyring_file else None
        policy = WatchedFile(settings.policy_file, Policy.load, "policy") if settings.policy_file else None
        return cls(keyring, policy)

    def current(self) -> tuple[Keyring | None, Policy | None]:
        return (self.keyring.current() if self.keyring else None,
                self.policy.current() if self.policy else None)

    def read_afresh(self) -> tuple[Keyring | None, Policy | None]:
        for watched in (self.keyring, self.policy):
            if watched is not None:
                watched.reload()
        return self.current()

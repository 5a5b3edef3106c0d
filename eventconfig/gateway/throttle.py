"""Failed logins, limited per user and per address (pure apart from a clock and a lock).

Each failed login counts against its client address and, for basic auth, its username. Once either
has ``max_failures`` failures within ``window_s`` seconds, every login attempt for it is refused
(429 with Retry-After) until the oldest of them leaves the window, whatever the credentials: an
answer that told a right password from a wrong one would let guessing go on. So an attacker can
lock a user out for at most one window at a time, and guesses at most ``max_failures`` passwords of
a user per window from any number of addresses. The lock is there because FastAPI runs the
authentication dependency in worker threads.

Example::

    throttle = LoginThrottle(max_failures=10, window_s=60)
    throttle.check(["addr:10.0.0.7", "user:alice"])    # raises TooManyLogins while over the limit
    throttle.failed(["addr:10.0.0.7", "user:alice"])
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from eventconfig.errors import EventConfigError


class TooManyLogins(EventConfigError):
    """Too many failed logins for this user or address; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LoginThrottle:
    """Sliding windows of failure times by key (``addr:<ip>``, ``user:<name>``), bounded in memory."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.max_keys, self._clock = max_failures, window_s, max_keys, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, keys: Iterable[str]) -> None:
        """TooManyLogins when any of ``keys`` is over the limit now."""
        now = self._clock()
        with self._lock:
            waits = [self._wait(key, now) for key in keys]
        wait = max(waits, default=0.0)
        if wait > 0:
            raise TooManyLogins(f"too many failed logins; try again in {math.ceil(wait)} s", math.ceil(wait))

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
                times.append(now)
                self._failures[key] = times  # most recently failed last: the first ones are evicted
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def _wait(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        return times[0] + self.window_s - now if len(times) >= self.max_failures else 0.0

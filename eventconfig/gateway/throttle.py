"""Failed logins, limited per user and per address (pure apart from a clock and a lock).

Each failed login counts against its client address and, for basic auth, its username. Once either
has ``max_failures`` failures within ``window_s`` seconds, every login attempt for it is refused
(429 with Retry-After) until the oldest of them leaves the window, whatever the credentials: an
answer that told a right password from a wrong one would let guessing go on. So an attacker can
lock a user out for at most one window at a time, and guesses at most ``max_failures`` passwords of
a user per window from any number of addresses. An attempt counts as a failure from the moment it
is let through until it succeeds, so concurrent guesses cannot overtake the count. The lock is
there because FastAPI runs the authentication dependency in worker threads.

Example::

    throttle = LoginThrottle(max_failures=10, window_s=60)
    attempt = throttle.attempt(["addr:10.0.0.7", "user:alice"])   # TooManyLogins while over the limit
    ...                                                            # check the password
    throttle.succeeded(attempt)                                    # only when it was right
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from eventconfig.errors import EventConfigError


class TooManyLogins(EventConfigError):
    """Too many failed logins for this user or address; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    """A login let through: counted as a failure of ``keys`` at ``at`` unless it succeeds."""

    keys: tuple[str, ...]
    at: float


class LoginThrottle:
    """Sliding windows of failure times by key (``addr:<ip>``, ``user:<name>``), bounded in memory."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.max_keys, self._clock = max_failures, window_s, max_keys, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def attempt(self, keys: Iterable[str]) -> Attempt:
        """Let a login through and count it as failed; TooManyLogins when any of ``keys`` is over the limit."""
        keys, now = tuple(keys), self._clock()
        with self._lock:
            wait = max((self._wait(key, now) for key in keys), default=0.0)
            if wait <= 0:
                for key in keys:
                    times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
                    times.append(now)
                    self._failures[key] = times  # most recently failed last: the first ones are evicted
                while len(self._failures) > self.max_keys:
                    self._failures.popitem(last=False)
        if wait > 0:
            raise TooManyLogins(f"too many failed logins; try again in {math.ceil(wait)} s", math.ceil(wait))
        return Attempt(keys, now)

    def succeeded(self, attempt: Attempt) -> None:
        """The attempt was a good login: it is not a failure after all."""
        with self._lock:
            for key in attempt.keys:
                times = self._failures.get(key)
                if times is not None and attempt.at in times:
                    times.remove(attempt.at)
                    if not times:
                        del self._failures[key]

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

"""Slow down password guessing: a sliding-window limit on failed sign-ins.

Failures are counted separately per username (guessing one account's password from many addresses)
and per client address (trying many accounts from one place). In memory, per process: enough for
one server process; it resets on restart, which only gives an attacker a fresh window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from parity.errors import TooManyAttempts

# Above this many tracked keys, expired ones are swept, so a flood of made-up usernames or
# addresses cannot grow memory without bound.
_SWEEP_ABOVE = 10_000


class LoginThrottle:
    """Refuse sign-in attempts after ``max_failures`` failures within ``window_seconds``.

    Use: ``check`` before verifying the password, then ``failure`` or ``success``. Thread-safe.
    ``clock`` returns seconds and is injectable for tests.
    """

    def __init__(self, max_failures: int = 5, window_seconds: float = 900,
                 clock: Callable[[], float] = time.monotonic, max_failures_per_address: int = 50) -> None:
        if max_failures < 1 or window_seconds <= 0 or max_failures_per_address < 1:
            raise ValueError("max_failures must be >= 1 and window_seconds > 0")
        self.max_failures = max_failures
        # A whole practice often signs in from one NAT address, so the address limit is higher than
        # the per-account one: it stops spraying many accounts, not colleagues mistyping.
        self.max_failures_per_address = max_failures_per_address
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, username: str, ip: str | None) -> None:
        """Raise ``TooManyAttempts`` (with ``retry_after`` seconds) if the username or address is locked out."""
        with self._lock:
            now = self._clock()
            wait = max((self._wait(key, now, limit) for key, limit in self._keys(username, ip)), default=0.0)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise TooManyAttempts(f"too many failed sign-in attempts; try again in {retry_after} seconds",
                                  retry_after=retry_after)

    def failure(self, username: str, ip: str | None) -> None:
        """Count one failed sign-in against the username and the address."""
        with self._lock:
            now = self._clock()
            if len(self._failures) > _SWEEP_ABOVE:
                self._sweep(now)
            for key, limit in self._keys(username, ip):
                q = self._failures.setdefault(key, deque())
                self._prune(q, now)
                q.append(now)
                # Only the newest `limit` failures matter for the decision.
                while len(q) > limit:
                    q.popleft()

    def success(self, username: str, ip: str | None) -> None:
        """A successful sign-in clears the username's failures (not the address's: one valid account
        must not let an address reset its count while guessing others)."""
        del ip
        with self._lock:
            self._failures.pop(_user_key(username), None)

    # -- internals -------------------------------------------------------------------------------
    def _keys(self, username: str, ip: str | None) -> list[tuple[str, int]]:
        keys = [(_user_key(username), self.max_failures)]
        if ip:
            keys.append((f"ip:{ip}", self.max_failures_per_address))
        return keys

    def _prune(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_seconds:
            q.popleft()

    def _wait(self, key: str, now: float, limit: int) -> float:
        q = self._failures.get(key)
        if not q:
            return 0.0
        self._prune(q, now)
        if len(q) < limit:
            if not q:
                del self._failures[key]
            return 0.0
        # Locked until enough of the oldest failures leave the window to drop below the limit.
        return q[len(q) - limit] + self.window_seconds - now

    def _sweep(self, now: float) -> None:
        for key in list(self._failures):
            q = self._failures[key]
            self._prune(q, now)
            if not q:
                del self._failures[key]


def _user_key(username: str) -> str:
    return f"user:{username.strip().lower()}"

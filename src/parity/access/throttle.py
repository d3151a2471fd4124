"""Slow down password guessing: failed sign-ins counted in the database, with a progressive delay.

Issue 12 finding 6: the old in-memory count was checked before the (slow) password check and
incremented after it, so 200 parallel guesses all passed the check (44 were tried with a limit of
5); a known username could be locked out for 15 minutes by anyone; and X-Forwarded-For was believed
from any local client. Now:

* **Atomic.** ``begin`` counts and *reserves* an attempt in one transaction (under an advisory
  lock on PostgreSQL, so every thread and server process shares the count). An attempt in flight
  counts as a failure until it ends, so a parallel burst gets at most the limit of password checks.
* **Progressive delay, not a lockout.** After ``max_failures`` failures for a username from one
  address, each further attempt must wait ``base_delay`` seconds after the last, doubling each time
  up to ``max_delay``. The count is kept per (username, address), so a stranger guessing from their
  address does not lock the real user out from theirs; a username has a higher, separate limit
  across all addresses (a distributed guess), and an address one across all usernames (spraying).
* **Addresses** come from ``request.client`` only; ``parity serve`` lets uvicorn rewrite it from
  ``X-Forwarded-For`` only for ``PARITY_TRUSTED_PROXIES``.

What was typed as a username is never stored: keys are HMACs under the deployment key
(``parity.access.keys``). Failures older than ``window_seconds`` are forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from parity.access.keys import deployment_key
from parity.access.schema import ready
from parity.db import Database
from parity.db.locks import LockKey, hold
from parity.db.transactions import atomic, utc_now
from parity.errors import TooManyAttempts

# Another lock than the audit log's, so sign-ins and audit appends do not queue together (it was
# PG_LOCK_KEY + 1, which is MESH_FILING's key: the registry in parity.db.locks keeps keys apart).
THROTTLE_LOCK_KEY = LockKey.SIGN_IN


class LoginThrottle:
    """Counts sign-in attempts in ``db``. Use ``begin`` before checking a password, then ``failed``
    or ``succeeded`` with the attempt id it returned. ``clock`` returns naive UTC (for tests)."""

    def __init__(self, db: Database, *, max_failures: int = 5, max_failures_per_user: int = 20,
                 max_failures_per_address: int = 50, window_seconds: float = 900, base_delay: float = 30,
                 max_delay: float = 900, clock: Callable[[], datetime] = utc_now) -> None:
        if min(max_failures, max_failures_per_user, max_failures_per_address) < 1 or window_seconds <= 0:
            raise ValueError("limits must be >= 1 and window_seconds > 0")
        self.db = db
        # A whole practice often signs in from one NAT address, so the address limit is the highest:
        # it stops spraying many accounts, not colleagues mistyping.
        self.limits = {"pair": max_failures, "user": max_failures_per_user, "addr": max_failures_per_address}
        self.window = timedelta(seconds=window_seconds)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock

    def begin(self, username: str, ip: str | None) -> str:
        """Reserve an attempt and return its id, or raise ``TooManyAttempts`` (``retry_after`` seconds)."""
        ready(self.db)
        keys = self._keys(username, ip)
        attempt = uuid.uuid4().hex
        with atomic(self.db):
            self._lock()
            now = self._clock()
            self.db.execute("DELETE FROM login_attempts WHERE attempted_at <= ?", [now - self.window])
            wait = 0.0
            for kind, key in keys:
                count, latest = self.db.execute(
                    "SELECT COUNT(*), MAX(attempted_at) FROM login_attempts WHERE key_hash = ?", [key])[0]
                excess = int(count) - self.limits[kind] + 1
                if excess > 0 and latest is not None:
                    delay = min(self.base_delay * 2 ** (excess - 1), self.max_delay)
                    wait = max(wait, delay - (now - _naive(latest)).total_seconds())
            if wait > 0:
                retry = max(1, math.ceil(wait))
                raise TooManyAttempts(f"too many failed sign-in attempts; try again in {retry} seconds",
                                      retry_after=retry)
            for _, key in keys:
                self.db.execute("INSERT INTO login_attempts (attempt_id, key_hash, attempted_at, state) "
                                "VALUES (?, ?, ?, 'pending')", [attempt, key, now])
        return attempt

    def failed(self, attempt: str) -> None:
        """The password was wrong: the reserved attempt stays counted, dated now."""
        self.db.execute("UPDATE login_attempts SET state = 'failed', attempted_at = ? WHERE attempt_id = ?",
                        [self._clock(), attempt])

    def succeeded(self, attempt: str, username: str, ip: str | None) -> None:
        """Signed in: forget this attempt and the username's failures (not the address's: one valid
        account must not let an address reset its count while guessing others)."""
        keys = [key for kind, key in self._keys(username, ip) if kind in ("pair", "user")]
        with atomic(self.db):
            self.db.execute("DELETE FROM login_attempts WHERE attempt_id = ?", [attempt])
            for key in keys:
                self.db.execute("DELETE FROM login_attempts WHERE key_hash = ?", [key])

    def forget(self, username: str, ip: str | None = None) -> None:
        """Clear a username's failures (overall, and from ``ip``): an administrator's unlock."""
        with atomic(self.db):
            for kind, key in self._keys(username, ip):
                if kind != "addr":
                    self.db.execute("DELETE FROM login_attempts WHERE key_hash = ?", [key])

    # -- internals -------------------------------------------------------------------------------
    def _keys(self, username: str, ip: str | None) -> list[tuple[str, str]]:
        name, addr = _name(username), (ip or "-")
        keys = [("pair", self._hash(f"pair:{name}|{addr}")), ("user", self._hash(f"user:{name}"))]
        if ip:
            keys.append(("addr", self._hash(f"addr:{addr}")))
        return keys

    def _hash(self, text: str) -> str:
        return hmac.new(deployment_key(self.db), text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _lock(self) -> None:
        hold(self.db, THROTTLE_LOCK_KEY)


def _name(username: str) -> str:
    return username.strip().lower()[:200]


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value

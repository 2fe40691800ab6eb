"""Requests per passenger account per minute, counted by the embedded server.

Why the server: every stanza crosses it under the sender's authenticated JID (server_guard
stamps `from`), so a client cannot dodge the count by writing another name, and the
MainManager never sees the excess (registry.py stays as it is). Only client-scope accounts
(`passenger-*`, `complainant-*`, accounts.CLIENT_PREFIXES) are counted: the fleet's own
agents (vehicles announcing themselves, managers) message the MainManager all the time, and
outsiders can only ever hold client accounts. A fleetbid passenger asks once per account,
so the limit only bites an account that floods.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from fleetbid.platform.accounts import CLIENT_PREFIXES

DEFAULT_PER_MINUTE = 10
WINDOW_S = 60.0


class RequestLimiter:
    """A sliding one-minute window per account: at most `per_minute` messages to `target`."""

    def __init__(self, target_local: str, per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.target_local = target_local
        self.per_minute = per_minute
        self.clock = clock
        self.seen: dict[str, collections.deque[float]] = {}
        self.refused = 0
        self._swept = clock()

    def counts(self, sender_local: str, to_local: str) -> bool:
        return to_local == self.target_local and sender_local.startswith(CLIENT_PREFIXES)

    def allow(self, account: str) -> bool:
        """Record one message from `account` (a bare JID); False when over the limit
        (refused messages are not counted, so a flooder gets back in after a minute)."""
        now = self.clock()
        self._sweep(now)
        times = self.seen.setdefault(account, collections.deque())
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            self.refused += 1
            return False
        times.append(now)
        return True

    def reason(self) -> str:
        return f"rate limit: more than {self.per_minute} requests per minute from this account"

    def _sweep(self, now: float) -> None:
        # One entry per account ever seen would grow for days: drop the quiet ones.
        if now - self._swept < WINDOW_S:
            return
        self._swept = now
        for account in [a for a, t in self.seen.items() if not t or now - t[-1] >= WINDOW_S]:
            del self.seen[account]

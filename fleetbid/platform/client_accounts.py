"""One-off client accounts leave the embedded server once their last connection has closed.

Every passenger is its own account (`passenger-<request>`, accounts.CLIENT_PREFIXES), and
pyjabber 0.4.5 keeps an account for ever: its credentials row, roster rows and a presence
entry (set to unavailable at logout, never dropped). A fleet serving a ride a second kept
some kilobytes per ride in its server (docs/soak.md). The rule: a client-scope account with
no connection for `retention_s` (default a minute: a client that reconnects soon finds its
account) is removed. It can register again, as any passenger does. Fleet accounts (vehicles,
managers) are never removed. Runs in the server child; attribute names as of pyjabber 0.4.5.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fleetbid.platform.accounts import CLIENT_PREFIXES

DEFAULT_RETENTION_S = 60.0
LOG_TAG = "fleetbid-guard"


class ClientAccounts:
    """Schedules the removal of client accounts whose last connection closed."""

    def __init__(self, retention_s: float = DEFAULT_RETENTION_S) -> None:
        self.retention_s = retention_s
        self.pending: dict[str, asyncio.TimerHandle] = {}  # username -> its removal
        self.tasks: set[asyncio.Task[None]] = set()
        self.removed = 0

    def connection_closed(self, connections: Any, jid: Any) -> None:
        """A client connection of `jid` (pyjabber JID) is gone: start the account's clock
        if it was a client account's last connection."""
        user = getattr(jid, "user", None)
        if not user or not user.startswith(CLIENT_PREFIXES) or connected(connections, user):
            return
        old = self.pending.pop(user, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.pending[user] = loop.call_later(self.retention_s, self._due, connections, jid)

    def _due(self, connections: Any, jid: Any) -> None:
        self.pending.pop(jid.user, None)
        if connected(connections, jid.user):  # it came back: its next close starts again
            return
        task = asyncio.ensure_future(self.remove(jid))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def remove(self, jid: Any) -> None:
        """Credentials, roster rows and presence entry of the account; logged."""
        from loguru import logger
        from pyjabber.db.database import DB
        from pyjabber.db.model import Model
        from pyjabber.features.presence.PresenceFeature import Presence
        from sqlalchemy import delete

        user, bare = jid.user, jid.bare()
        try:
            async with await DB.connection_async() as con, con.begin():
                await con.execute(delete(Model.Credentials).where(Model.Credentials.c.jid == user))
                await con.execute(delete(Model.Roster).where(Model.Roster.c.jid == user))
        except Exception as exc:  # the server goes on; the account stays
            logger.warning(f"{LOG_TAG}: could not remove client account {user}: {exc!r}")
            return
        presence = Presence()
        with contextlib.suppress(AttributeError):
            presence._online_status.pop(bare, None)
            presence._roster._roster_in_memory.pop(user, None)
        self.removed += 1
        logger.info(f"{LOG_TAG}: removed client account {user} "
                    f"(no connection for {self.retention_s:g} s; {self.removed} so far)")


def connected(connections: Any, user: str) -> bool:
    """Whether pyjabber's ConnectionManager holds a connection of this username."""
    peers = getattr(connections, "_peerList", {})
    return any(c.jid is not None and c.jid.user == user for c in list(peers.values()))


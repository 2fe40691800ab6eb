"""The embedded server tells a watcher (the MainManager) when a watched session ends.

RFC 6121 §4.5.1: when a client's session ends, even without a clean close (its host
crashed, its TCP connection broke), the server sends unavailable presence on its behalf
to the contacts subscribed to it. pyjabber 0.4.5 queues such an "INTERNAL" presence in
`XMLProtocol.connection_lost` but never consumes the queue, so nobody hears of it (read in
pyjabber/network/protocols/XMLProtocol.py and features/presence/PresenceFeature.py).

Instead of a roster subscription between the MainManager and every vehicle (a subscribe /
subscribed exchange per vehicle at start, roster state in the server), the server treats
one local part as subscribed to every session whose local part starts with the watched
prefix, and writes that watcher one `<presence type="unavailable"/>` from the ended
session's full JID. No stanza is added while sessions live; one per ended session.
The `from` is the server's own knowledge of the session, so no client can forge it here
(a client's own presence gets its authenticated JID stamped by server_guard).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from loguru import logger

_UNAVAILABLE = "unavailable"


def install(watcher: str, prefix: str) -> None:
    """Patch pyjabber (once, in the server child, before the server is built)."""
    from pyjabber.network.protocols.XMLProtocol import XMLProtocol

    original = XMLProtocol.connection_lost

    def connection_lost(self: Any, exc: BaseException | None) -> None:
        jid = None
        # The JID must be read before pyjabber's handler runs: it drops the parser state.
        if not getattr(self, "_timeout_flag", False) and not getattr(self, "_server_incoming",
                                                                       False):
            try:
                jid = self._connection_manager.get_jid(self._peer)
            except Exception:  # never let the notice break the server; but say so
                logger.exception(f"session watch: no JID for the lost connection {self._peer}")
        original(self, exc)
        if jid is not None and watched(jid.user, watcher, prefix):
            try:
                told = tell_watcher(self._connection_manager, watcher, jid)
            except Exception:
                logger.exception(f"session watch: could not tell {watcher} that {jid} ended")
            else:
                if not told:
                    logger.warning(f"session watch: {jid} ended, but {watcher} has no live "
                                   "session to tell")

    XMLProtocol.connection_lost = connection_lost  # type: ignore[method-assign]


def watched(user: str | None, watcher: str, prefix: str) -> bool:
    return bool(user) and user != watcher and str(user).startswith(prefix)


def unavailable_presence(sender: str, to: str) -> bytes:
    return ET.tostring(ET.Element("presence", attrib={"from": sender, "to": to,
                                                      "type": _UNAVAILABLE}))


def tell_watcher(connections: Any, watcher: str, ended: Any) -> int:
    """Write the unavailable presence to every live session of the watcher; how many."""
    from pyjabber.stream.JID import JID

    told = 0
    for client in connections.get_transport_online(JID(user=watcher, domain=ended.domain)):
        if client.transport is not None and not client.transport.is_closing():
            client.transport.write(unavailable_presence(str(ended), str(client.jid)))
            told += 1
    return told

"""An agent's stream that moves to the next node of a clustered server when its node is lost.

slixmpp reconnects only when asked, and then to the same address, which is useless when
that node is dead. `Failover` keeps the server's addresses (`XmppEndpoint.addresses`: the
agent's own node first, then the cluster's other nodes), and:

* on a lost stream (not one we closed), connects to the next address at once;
* on a failed connection attempt (the first one included), points slixmpp's retry loop (it re-reads
  `custom_address` on every attempt, with its own back-off) at the next address;
* while the stream is down, holds what the agent sends and writes it once the new
  session has started (after spade's initial presence, so replies can be routed to us).
  The stanza is rendered then, with the new full JID: ejabberd refuses a `from` that is
  not the session's own.
* remembers, for the whole process, the node its agents last reached: an agent started
  later (a passenger) connects there first.

What was in flight on the dead node is lost; the protocol's own timeouts cover that
(a round without bids is re-run, a passenger gives up with a reason). The account, stored
in the cluster's replicated Mnesia, is the same on every node, so spade's login (and its
in-band registration, answered "already registered") works on the survivor unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("fleetbid.xmpp")

Render = Callable[[str], str]  # bound full JID -> stanza text

# The address agents of this process last reached the server at, per address list: an agent
# started after a failover (a passenger) goes straight to the node that is still up.
_live: dict[tuple[tuple[str, int], ...], int] = {}


class Failover:
    def __init__(self, name: str, addresses: tuple[tuple[str, int], ...]) -> None:
        self.name = name
        self.addresses = addresses
        self.turn = _live.get(addresses, 0)
        self.online = False
        self.closing = False  # the agent is stopping: a lost stream is expected
        self.held: list[Render] = []
        self.failovers = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.addresses[self.turn % len(self.addresses)]

    def prepare(self, client: Any) -> None:
        """Before the first connection: a node that refuses it sends us to the next one."""
        if len(self.addresses) > 1:
            client.add_event_handler("connection_failed", lambda _exc: self._next(client))

    def attach(self, client: Any) -> None:
        """Once the first session is up (spade's own start waits for that one)."""
        self.online = True
        if len(self.addresses) < 2:
            return
        _live[self.addresses] = self.turn % len(self.addresses)
        client.add_event_handler("disconnected", lambda reason: self._lost(client, reason))
        client.add_event_handler("session_start", lambda _event: self._resumed(client))

    def send(self, client: Any, render: Render) -> None:
        # One address: nowhere to fail over to, slixmpp's own behaviour (it raises if down).
        if len(self.addresses) < 2 or (self.online and client.transport is not None):
            client.send_raw(render(str(client.boundjid)))
        else:
            self.held.append(render)

    def _lost(self, client: Any, reason: object) -> None:
        self.online = False
        if self.closing:
            return
        dead = self.address
        self.turn += 1
        self.failovers += 1
        log.warning("%s: stream to %s:%s lost (%s); connecting to %s:%s", self.name,
                    *dead, reason, *self.address)
        # After the other handlers of this event (slixmpp's own reconnect does the same).
        asyncio.get_running_loop().call_soon(lambda: self._connect(client))

    def _connect(self, client: Any) -> None:
        if not self.closing:
            host, port = self.address
            client.connect(host=host, port=port)

    def _next(self, client: Any) -> None:
        if self.closing:
            return
        self.turn += 1
        client.custom_address = self.address  # slixmpp's next attempt goes there

    def _resumed(self, client: Any) -> None:
        if self.closing:
            return
        self.online = True
        _live[self.addresses] = self.turn % len(self.addresses)
        log.warning("%s: session resumed on %s:%s, %d held message(s) sent", self.name,
                    *self.address, len(self.held))
        held, self.held = self.held, []
        for render in held:
            client.send_raw(render(str(client.boundjid)))

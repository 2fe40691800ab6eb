"""What the serve state file carries for joining nodes, and what a node makes of it.

A node needs the fleet-scope account key: its vehicles are fleet agents (docs/security.md),
and the embedded server registers a fleet name only with a password derived from that key.
The state file holds it (as `join_token`) only when serve was started with `--join-slots`,
and the file is written 0600; without the flag nothing in it lets anyone act as the fleet.
"""

from __future__ import annotations

import dataclasses

from fleetbid.core.config import RunConfig
from fleetbid.platform.accounts import AccountKeys
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.population import Names, join_slot_names
from fleetbid.service.state import ServeState


class NotJoinable(Exception):
    """The fleet takes no joining nodes (serve ran without --join-slots)."""


def with_join(state: ServeState, config: RunConfig, endpoint: XmppEndpoint,
              names: Names) -> ServeState:
    """The state as written: plus the join token and slot JIDs when joining is allowed."""
    if not config.join_slots:
        return state
    token = (endpoint.accounts.fleet or "") if endpoint.accounts else ""
    slots = [endpoint.jid(n) for n in join_slot_names(config, names)]
    return dataclasses.replace(state, join_token=token, join_slots=slots)


def node_endpoint(state: ServeState) -> XmppEndpoint:
    """The endpoint a joining node logs its vehicles in with (both scope keys)."""
    if not state.join_slots:
        raise NotJoinable("this fleet takes no joining nodes: start serve with "
                          "--join-slots N")
    if state.embedded and not state.join_token:
        raise NotJoinable("the state file holds no join token")
    accounts = AccountKeys(client=state.account_key, fleet=state.join_token) \
        if state.embedded else None
    return XmppEndpoint(state.host, state.port, state.domain, state.embedded, accounts)

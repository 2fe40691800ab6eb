"""What the serve state file carries for joining nodes, and what a node makes of it.

A node needs the fleet-scope account key: its vehicles are fleet agents (docs/security.md),
and the embedded server registers a fleet name only with a password derived from that key.
Serve writes it, only when started with `--join-slots` or `--replica-slots` (then with the
managers' group key too), to a join file of its own beside the state file (`serve.json.join`,
0600), never into the state file: the state file is what clients (`fleetbid request`) are
given, and a client must not hold the fleet's key. A node is given both files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.platform.accounts import AccountKeys
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.replication import GroupConfig
from fleetbid.run.population import Names, join_slot_names
from fleetbid.run.replica_setup import ReplicaSettings
from fleetbid.service.join_token import new_join_key
from fleetbid.service.state import ServeState


class NotJoinable(Exception):
    """The fleet takes no joining nodes (serve ran without --join-slots)."""


def with_join(state: ServeState, config: RunConfig, endpoint: XmppEndpoint, names: Names,
              replicas: dict[int, ReplicaSettings]) -> ServeState:
    """The state as written: plus the join token, the slot JIDs and (with replica slots) the
    managers' group when joining is allowed."""
    if not (config.join_slots or config.replica_slots):
        return state
    token = (endpoint.accounts.fleet or "") if endpoint.accounts else ""
    slots = [endpoint.jid(n) for n in join_slot_names(config, names)]
    group: dict[str, Any] = {}
    if config.replica_slots and replicas:
        some = next(iter(replicas.values()))
        group = {"config": {**dataclasses.asdict(some.group), "key": some.group.key.hex()},
                 "initial_members": list(some.initial_members), "password": some.password,
                 "slots": config.replica_slots}
    return dataclasses.replace(state, join_token=token, join_slots=slots, replica_group=group,
                               join_key=new_join_key())


def node_replica(state: ServeState, slot: int, interface: str) -> ReplicaSettings:
    """A joining node's replica host: a standby with id `slot` (the group's lowest ids are
    reserved for nodes), on this host's interface, which the leader recruits at once."""
    group = state.replica_group
    if not group:
        raise NotJoinable("this fleet takes no replicas from nodes: start serve with "
                          "--replicas R --replica-slots K")
    if not 0 <= slot < group["slots"]:
        raise NotJoinable(f"replica slot {slot} is not among the fleet's "
                          f"{group['slots']} (0..{group['slots'] - 1})")
    raw = group["config"]
    config = GroupConfig(**{**raw, "key": bytes.fromhex(raw["key"]), "interface": interface})
    return ReplicaSettings(slot, tuple(group["initial_members"]), True, config,
                           group["password"])


def node_endpoint(state: ServeState) -> XmppEndpoint:
    """The endpoint a joining node logs its agents in with (both scope keys)."""
    if not (state.join_slots or state.replica_group):
        raise NotJoinable("this fleet takes no joining nodes: start serve with "
                          "--join-slots N")
    if state.embedded and not state.join_token:
        raise NotJoinable("the state file holds no join token")
    accounts = AccountKeys(client=state.account_key, fleet=state.join_token) \
        if state.embedded else None
    return XmppEndpoint(state.host, state.port, state.domain, state.embedded, accounts)


SECRETS = ("join_token", "replica_group", "join_key")


def join_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".join")


def write_join(state_path: Path, state: ServeState) -> ServeState:
    """Write the join secrets (if any) to the join file, 0600, atomically; return the state
    without them, for the state file."""
    secrets = {name: getattr(state, name) for name in SECRETS}
    if not any(secrets.values()):
        return state
    path = join_path(state_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"pid": state.pid, "port": state.port, **secrets}) + "\n")
    os.replace(tmp, path)
    return dataclasses.replace(state, join_token="", replica_group={}, join_key="")


def read_join(state: ServeState, path: Path) -> ServeState:
    """The state with the join secrets of the join file `path` (which must be this serve's)."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotJoinable(f"no join file {path}: serve writes it beside its state file when "
                          "started with --join-slots or --replica-slots") from None
    except (OSError, ValueError) as exc:
        raise NotJoinable(f"unreadable join file {path}: {exc}") from None
    if not isinstance(raw, dict) or (raw.get("pid"), raw.get("port")) != (state.pid,
                                                                            state.port):
        raise NotJoinable(f"the join file {path} is not the one of this serve")
    return dataclasses.replace(state, join_token=str(raw.get("join_token", "")),
                               replica_group=dict(raw.get("replica_group") or {}),
                               join_key=str(raw.get("join_key", "")))


def remove_join(state_path: Path, pid: int) -> None:
    """Remove the join file if it is still this serve's."""
    path = join_path(state_path)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()

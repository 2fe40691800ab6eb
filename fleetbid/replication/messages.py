"""Bodies of the protocol messages (msgpack via msgspec; compact array-like structs)."""

from __future__ import annotations

import msgspec


class Heartbeat(msgspec.Struct, array_like=True, frozen=True):
    view_id: int
    members: list[int]
    ready: bool = True  # the sender has the state (not a recruit still waiting for it)
    frozen: bool = False  # the sender is in an unfinished view change
    highest_vid: int = 0  # the highest view id the sender has seen (flushes included)


class Msg(msgspec.Struct, array_like=True, frozen=True):
    mid: int
    payload: bytes
    client: int = -1  # open group: the client that submitted it, and its request id
    req: int = -1
    vid: int = 0  # the sender's installed view when it sent this


class Propose(msgspec.Struct, array_like=True, frozen=True):
    mid: int
    seq: int
    vid: int = 0  # the proposer's installed view (0: unknown, older senders)


class Agreed(msgspec.Struct, array_like=True, frozen=True):
    mid: int
    seq: int
    tie: int
    vid: int = 0  # the sender's installed view when it agreed (0: unknown, older senders)


class AgreedOk(msgspec.Struct, array_like=True, frozen=True):
    sender: int  # the message's sender and id
    mid: int


class Entry(msgspec.Struct, array_like=True, frozen=True):
    sender: int
    mid: int
    payload: bytes
    client: int
    req: int
    seq: int
    tie: int
    agreed: bool
    pos: int = -1  # delivery position, for entries already delivered at the reporter


class Flush(msgspec.Struct, array_like=True, frozen=True):
    vid: int
    members: list[int]  # the proposed view, joiners included
    joiners: list[int]


class FlushOk(msgspec.Struct, array_like=True, frozen=True):
    vid: int
    max_seq: int
    delivered: int
    needs_state: bool
    entries: list[Entry]


class Install(msgspec.Struct, array_like=True, frozen=True):
    vid: int
    members: list[int]
    joiners: list[int]
    view_seq: int
    coordinator: int
    agreed: list[Entry]


class InstallOk(msgspec.Struct, array_like=True, frozen=True):
    vid: int


class Commit(msgspec.Struct, array_like=True, frozen=True):
    vid: int


class State(msgspec.Struct, array_like=True, frozen=True):
    vid: int
    view_seq: int
    delivered: int  # message entries delivered before the view (client duplicates included)
    applied: int  # deliveries applied before the view: the next Delivery.seq
    snapshot: bytes
    clients: list[tuple[int, list[tuple[int, int, int, int]]]]  # client, [(req,seq,snd,mid)]
    log: list[Entry] = []  # the sender's last deliveries: the recruit reports them in flushes


class Discover(msgspec.Struct, array_like=True, frozen=True):
    vid: int
    leader: int


class Offer(msgspec.Struct, array_like=True, frozen=True):
    member: int


class ClientSubmit(msgspec.Struct, array_like=True, frozen=True):
    req: int
    payload: bytes


class ClientResult(msgspec.Struct, array_like=True, frozen=True):
    req: int
    seq: int
    sender: int
    mid: int

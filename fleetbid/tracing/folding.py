"""Folding a conversation's repeated messages into groups, for a shorter diagram.

Two kinds of repetition fold:

- Copies: a message to a replicated AuctionManager reaches every replica, and each
  receive is traced, so one send shows up with several receive-only twins. They fold into
  the message they copy ("received ×4").
- Fan-outs and fan-ins: one agent (the hub) sending the same kind of message to many
  agents, e.g. a call-for-bids to every admitted vehicle, or the answers coming back to
  one hub. Their messages need not be adjacent in the trace (audit copies and other
  agents' traffic interleave), so a group stays open until its hub sends a message that
  belongs to none of its groups: the hub acted on what it had gathered.

A group is drawn where its first message was, so folding moves messages up. It must never
move one above an earlier message of the same agent (a vehicle's call drawn above its own
earlier announcement would tell a false story), nor a fan-in's message above the hub's
reaction to the fan-in (a late bid drawn above the award). A message that would is not
folded in. The hub itself is the exception to the first rule: its part in a group is one
action spread over time (calling everyone, gathering the answers), and other messages it
sends or receives meanwhile, such as an acknowledgement of each bid, may be drawn after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetbid.tracing.labels import body_of
from fleetbid.tracing.reader import Message

FOLD_MIN = 3  # smaller groups are drawn message by message
# Body fields that tell apart messages of one type that must not fold together.
DISTINGUISHING = ("round", "kind", "phase")

Unit = list[Message]  # a message and its receive-only copies
Key = tuple[str, str, tuple[Any, ...]]  # (direction, hub, kind)


def merge_copies(messages: Sequence[Message]) -> list[Unit]:
    """Each message with the receive-only messages identical to it that follow it (before
    the next send of the same message)."""
    units: list[Unit] = []
    latest: dict[tuple[str, str, str, str, bytes], Unit] = {}
    for msg in messages:
        key = msg.record.match_key()
        if msg.send is None and key in latest:
            latest[key].append(msg)
            continue
        unit = [msg]
        units.append(unit)
        latest[key] = unit
    return units


@dataclass
class Group:
    """Units in causal order, with their positions; `direction` is "out" (one sender, many
    receivers), "in" (many senders, one receiver) or "" (one unit so far)."""

    positions: list[int] = field(default_factory=list)
    direction: str = ""
    senders: set[str] = field(default_factory=set)
    receivers: set[str] = field(default_factory=set)

    def add(self, position: int, msg: Message) -> None:
        self.positions.append(position)
        self.senders.add(msg.record.sender)
        self.receivers.add(msg.record.to)

    def hub(self) -> str | None:
        if self.direction == "out":
            return next(iter(self.senders))
        return next(iter(self.receivers)) if self.direction == "in" else None


def _kind(msg: Message) -> tuple[Any, ...]:
    rec, body = msg.record, body_of(msg)
    extra = tuple(str(body.get(k)) for k in DISTINGUISHING)
    return (rec.type, rec.raw.get("performative"), *extra)


def _close(open_: dict[Key, Group], key: Key, group: Group) -> None:
    """Stop `group` taking messages through `key` (if a newer group has not taken it)."""
    if open_.get(key) is group:
        del open_[key]


def _group(units: Sequence[Unit], banned: set[int]) -> list[Group]:
    """Fan-out and fan-in groups (and single units), in order of their first unit; units
    in `banned` join no group."""
    groups: list[Group] = []
    open_: dict[Key, Group] = {}  # the groups that can still take such a message
    by_hub: dict[str, set[Key]] = defaultdict(set)
    for i, unit in enumerate(units):
        msg = unit[0]
        sender, to, kind = msg.record.sender, msg.record.to, _kind(msg)
        out = open_.get(("out", sender, kind))
        fan_in = open_.get(("in", to, kind))
        joinable = sender != to and i not in banned
        if joinable and out is not None and to not in out.receivers:
            if not out.direction:  # the second message decides which way a group goes
                out.direction = "out"
                _close(open_, ("in", next(iter(out.receivers)), kind), out)
            out.add(i, msg)
            continue
        if joinable and fan_in is not None and sender not in fan_in.senders:
            if not fan_in.direction:
                fan_in.direction = "in"
                _close(open_, ("out", next(iter(fan_in.senders)), kind), fan_in)
            fan_in.add(i, msg)
            continue
        # The sender acts on its own: what it was gathering or sending is over. But a reply
        # to an agent it is gathering from may be a per-message acknowledgement: then the
        # gatherings go on (and `_drawn_too_early` ends them if the replies do not fold).
        gathering = [k for k in by_hub[sender] if k[0] == "in" and k in open_]
        replying = any(to in open_[k].senders for k in gathering)
        for key in list(by_hub[sender]):
            if not (replying and key in gathering):
                by_hub[sender].discard(key)
                open_.pop(key, None)
        group = Group()
        group.add(i, msg)
        groups.append(group)
        if sender != to:
            for key in (("out", sender, kind), ("in", to, kind)):
                open_[key] = group
                by_hub[key[1]].add(key)
    return groups


def _steps(groups: Sequence[Group], min_size: int) -> list[tuple[list[int], str | None]]:
    """Drawn steps (unit positions, hub): groups big enough to fold, else single units."""
    steps: list[tuple[list[int], str | None]] = []
    for group in groups:
        if len(group.positions) >= max(min_size, 2):
            steps.append((group.positions, group.hub()))
        else:  # too small to fold: each unit at its own place
            steps += [([p], None) for p in group.positions]
    steps.sort(key=lambda s: s[0][0])
    return steps


def _drawn_too_early(steps: Sequence[tuple[list[int], str | None]],
                     units: Sequence[Unit]) -> set[int]:
    """The units that folding draws too early: received by a fan-in after its hub acted,
    or drawn above an earlier message of one of their agents other than the hub of their
    group (see the module doc)."""
    early: set[int] = set()
    single_sends: dict[str, list[int]] = defaultdict(list)
    for positions, hub in steps:
        if hub is None:
            single_sends[units[positions[0]][0].record.sender].append(positions[0])
    for positions, hub in steps:
        # A fan-in ends when its hub sends a message that does not fold (the award after
        # the bids): nothing received after that is drawn with it.
        if hub is not None and units[positions[0]][0].record.to == hub:
            acted = min((t for t in single_sends[hub] if t > positions[0]), default=None)
            early.update(p for p in positions if acted is not None and p > acted)
    latest: dict[str, int] = {}  # agent -> the latest position drawn so far
    for positions, hub in steps:
        for p in positions:
            rec = units[p][0].record
            for agent in (rec.sender, rec.to):
                if agent == hub:
                    continue
                seen = latest.get(agent, -1)
                if seen > p:
                    early.add(seen)  # the later unit, drawn first: it must not fold
                latest[agent] = max(seen, p)
    return early


def fold(messages: Sequence[Message], min_size: int = FOLD_MIN) -> list[list[Unit]]:
    """`messages` as drawn steps, each a list of units: one unit, or a fan-out or fan-in of
    at least `min_size` units (one hub, each peer at most once)."""
    units = merge_copies(messages)
    banned: set[int] = set()
    while True:  # each round bans more units from joining: a few rounds at most, in practice
        steps = _steps(_group(units, banned), min_size)
        early = _drawn_too_early(steps, units)
        if not early:
            return [[units[p] for p in positions] for positions, _ in steps]
        banned |= early

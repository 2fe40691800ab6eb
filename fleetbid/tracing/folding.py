"""Folding repeated fan-outs and fan-ins of a conversation into groups.

A fan-out is one agent (the hub) sending the same kind of message to many agents, e.g. a
call-for-bids to every admitted vehicle; a fan-in is the answers coming back to one hub.
Messages of a group need not be adjacent in the trace: other traffic (audit copies, the
other proxies' calls) interleaves with them. A group stays open until its hub sends a
message that belongs to none of its open groups: the hub acted on what it had, so later
messages are a new step and must not be drawn before that action.
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


@dataclass
class Group:
    """Messages in causal order, and their positions in the conversation; `direction` is
    "out" (one sender, many receivers), "in" (many senders, one receiver) or "" (one
    message so far)."""

    messages: list[Message] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    direction: str = ""
    senders: set[str] = field(default_factory=set)
    receivers: set[str] = field(default_factory=set)

    def add(self, position: int, msg: Message) -> None:
        self.messages.append(msg)
        self.positions.append(position)
        self.senders.add(msg.record.sender)
        self.receivers.add(msg.record.to)


Key = tuple[str, str, tuple[Any, ...]]  # (direction, hub, kind)


def _kind(msg: Message) -> tuple[Any, ...]:
    rec, body = msg.record, body_of(msg)
    extra = tuple(str(body.get(k)) for k in DISTINGUISHING)
    return (rec.type, rec.raw.get("performative"), *extra)


def fold(messages: Sequence[Message], min_size: int = FOLD_MIN) -> list[list[Message]]:
    """`messages` as steps: each a folded group (at least `min_size` messages, one hub, each
    peer at most once) or a single message; steps ordered by their first message."""
    groups: list[Group] = []
    open_: dict[Key, Group] = {}  # the groups that can still take such a message
    by_hub: dict[str, set[Key]] = defaultdict(set)

    for i, msg in enumerate(messages):
        sender, to, kind = msg.record.sender, msg.record.to, _kind(msg)
        out = open_.get(("out", sender, kind))
        fan_in = open_.get(("in", to, kind))
        if sender != to and out is not None and to not in out.receivers:
            if not out.direction:  # the second message decides which way a group goes
                out.direction = "out"
                open_.pop(("in", out.messages[0].record.to, kind), None)
            out.add(i, msg)
        elif sender != to and fan_in is not None and sender not in fan_in.senders:
            if not fan_in.direction:
                fan_in.direction = "in"
                open_.pop(("out", fan_in.messages[0].record.sender, kind), None)
            fan_in.add(i, msg)
        else:
            # The sender acts on its own: what it was gathering or sending is over.
            for key in by_hub.pop(sender, set()):
                open_.pop(key, None)
            group = Group()
            group.add(i, msg)
            groups.append(group)
            if sender != to:
                for key in (("out", sender, kind), ("in", to, kind)):
                    open_[key] = group
                    by_hub[key[1]].add(key)

    steps: list[tuple[int, list[Message]]] = []
    for group in groups:
        if len(group.messages) >= max(min_size, 2):
            steps.append((group.positions[0], group.messages))
        else:  # too small to fold: each message at its own place
            steps += [(p, [m]) for p, m in zip(group.positions, group.messages, strict=True)]
    steps.sort(key=lambda s: s[0])
    return [s[1] for s in steps]

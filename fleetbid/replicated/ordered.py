"""A ProtocolBehaviour run as a replicated state machine (the AuctionManager's replicas).

Every replica of an AuctionManager is logged in under the same JID, so the XMPP server hands
each of them every message sent to the manager. None of them acts on what it receives:
the group's leader submits it to the group's total order (followers keep it aside and
submit it themselves if the leader never does), and every replica then runs the ordinary
handler on the ordered copy. Handlers thus see the same inputs in the same order with the
same clock reading (`stamp`, taken by the submitter) and reach the same state.

Only the leader's `tell` reaches the network. Outputs get ids derived from their position
in the log, so when a new leader re-sends its recent outputs (the old one may have died
before sending them), receivers drop the copies they already have. Timers are entries of a
replicated table; the leader arms them and, when one fires, submits a tick that every
replica applies.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from spade.message import Message

if TYPE_CHECKING:
    from fleetbid.behaviours.base import ProtocolBehaviour

log = logging.getLogger("fleetbid.ordered")

INPUT, TICK = "input", "tick"
RECENT_OUTPUTS = 256  # per manager: what a new leader may have to re-send
TAKEOVER_GRACE_S = 0.1  # wall seconds before an overdue timer fires at a new leader
APPLIED_KEYS = 65536  # inputs remembered for duplicate suppression (deterministic eviction)


class Entry(msgspec.Struct, frozen=True, array_like=True):
    """One item of the total order: a message a manager received, or a timer that fired."""

    slot: str  # the manager's bare JID
    kind: str  # INPUT | TICK
    key: str  # INPUT: the message's id (duplicate suppression); TICK: the timer id
    stamp: float  # simulated time when submitted: the handlers' clock
    sender: str = ""
    metadata: dict[str, str] = {}
    body: str = ""
    thread: str = ""


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(Entry)


class OrderedLog(Protocol):
    """What an ordered behaviour needs from the replication group."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def is_member(self) -> bool: ...

    def submit(self, payload: bytes) -> Any: ...


def input_key(msg: Message) -> str:
    mid = msg.get_metadata("mid")
    if mid:
        return f"{msg.sender.bare}|{mid}"[:200]
    # No id (not one of ours): identical copies count as one.
    digest = hashlib.sha256(f"{msg.sender}|{_metadata(msg)}|{msg.body}".encode()).hexdigest()
    return f"{msg.sender.bare}|#{digest[:32]}"


def _metadata(msg: Message) -> dict[str, str]:
    return {str(k): str(v) for k, v in msg._metadata.items()}  # spade has no public iterator


class TimerHandle:
    def __init__(self, slot: OrderedSlot, timer_id: int) -> None:
        self.slot, self.timer_id = slot, timer_id

    def cancel(self) -> None:
        self.slot.cancel_timer(self.timer_id)


class OrderedSlot:
    """The replicated side of one manager's behaviour on one replica."""

    def __init__(
        self, behaviour: ProtocolBehaviour, log_: OrderedLog, applied: AppliedKeys,
        pending_grace_s: float = 0.5,
    ) -> None:
        self.behaviour = behaviour
        self.group = log_
        self.applied = applied
        self.pending_grace_s = pending_grace_s
        self.slot = ""
        self.seq = -1
        self.stamp = 0.0
        self.out_index = 0
        self.next_timer = 0
        self.timers: dict[int, tuple[float, Callable[[], Awaitable[None]]]] = {}
        self.armed: dict[int, asyncio.TimerHandle] = {}
        self.pending: dict[str, tuple[float, Entry]] = {}
        self.recent: collections.deque[tuple[float, Message]] = collections.deque(
            maxlen=RECENT_OUTPUTS
        )
        # Snapshot support: the log since this manager was last idle replays its state.
        self.since_idle: list[tuple[int, str, Entry]] = []
        self.uid = ""  # the entry being applied (see `apply`)
        self.timer_base = 0
        self.muted = False  # replaying a transferred log: no network, no timers
        # Leader: wall seconds from receiving an input to applying it (the cost of ordering).
        self.order_delays: collections.deque[float] = collections.deque(maxlen=4096)

    # --- receiving ----------------------------------------------------------------------------

    def capture(self, msg: Message) -> None:
        """A message reached this replica: get it into the total order (exactly once)."""
        if not self.group.is_member:
            # A standby (or a recruit before its state) orders nothing and never applies
            # what it would keep here: its copy grew with every message for as long as it
            # waited (issue 15, replica hosts' memory). Its recruitment resets the slot.
            return
        key = input_key(msg)
        if key in self.applied:
            return  # already ordered (the group was faster than our XMPP stream)
        entry = Entry(
            self.slot, INPUT, key, self.clock_now(), str(msg.sender),
            _metadata(msg), msg.body or "", msg.thread or "",
        )
        if key in self.pending:
            return
        # Kept until ordered, by the leader too: a submission lost with a view change is
        # submitted again (see `overdue`).
        self.pending[key] = (time.monotonic(), entry)
        if self.group.is_leader:
            self.submit(entry)

    def submit(self, entry: Entry) -> None:
        self.group.submit(ENCODER.encode(entry))

    def overdue(self, now: float) -> None:
        """Followers: submit what the leader has not ordered in time (it may be dead)."""
        for key, (seen, entry) in list(self.pending.items()):
            if now - seen >= self.pending_grace_s:
                self.resubmit(key, entry)

    def resubmit(self, key: str, entry: Entry) -> None:
        # Stamped anew: deadlines computed from a stamp taken before a failover would have
        # passed before anyone could act on them. Unordered, the entry has no stamp yet.
        entry = msgspec.structs.replace(entry, stamp=self.clock_now())
        self.pending[key] = (time.monotonic(), entry)
        self.submit(entry)

    # --- applying the total order -------------------------------------------------------------

    async def apply(self, seq: int, entry: Entry, replay: bool = False, uid: str = "") -> None:
        """Apply one ordered entry. `uid` names the entry whatever its log position (its
        submitter and message id): outputs are named after it, so two leaders can never give
        two different outputs one id."""
        self.seq, self.stamp, self.out_index = seq, entry.stamp, 0
        self.uid = uid or str(seq)
        behaviour = self.behaviour
        if entry.kind == INPUT:
            held = self.pending.pop(entry.key, None)
            if held is not None and self.group.is_leader:
                self.order_delays.append(time.monotonic() - held[0])
            # A replayed entry is in the transferred key set already.
            if not self.applied.add(entry.key) and not replay:
                return
            self.since_idle.append((seq, self.uid, entry))
            msg = Message(to=self.slot, sender=entry.sender, body=entry.body or None,
                          thread=entry.thread or None, metadata=dict(entry.metadata))
            async with behaviour.lock:
                await behaviour.handle(msg)
        elif entry.kind == TICK:
            timer = self.timers.pop(int(entry.key), None)
            if timer is None:
                return  # cancelled, or a second leader's copy of the same tick
            self.since_idle.append((seq, self.uid, entry))
            async with behaviour.lock:
                await timer[1]()
        if behaviour.idle():
            self.since_idle.clear()
            self.timer_base = self.next_timer

    # --- what handlers call -------------------------------------------------------------------

    def clock_now(self) -> float:
        return float(self.behaviour.agent.world.clock.now())

    def output(self, msg: Message) -> bool:
        """Name an output after its place in the log; True if this replica must send it."""
        msg.set_metadata("mid", f"{self.slot}#{self.uid}.{self.out_index}")
        self.out_index += 1
        self.recent.append((self.stamp, msg))
        return self.group.is_leader and not self.muted

    def timer(self, sim_seconds: float, callback: Callable[[], Awaitable[None]]) -> TimerHandle:
        timer_id = self.next_timer
        self.next_timer += 1
        self.timers[timer_id] = (self.stamp + max(0.0, sim_seconds), callback)
        if self.group.is_leader and not self.muted:
            self.arm(timer_id)
        return TimerHandle(self, timer_id)

    def cancel_timer(self, timer_id: int) -> None:
        self.timers.pop(timer_id, None)
        handle = self.armed.pop(timer_id, None)
        if handle is not None:
            handle.cancel()

    def arm(self, timer_id: int, at_least_s: float = 0.0) -> None:
        if timer_id in self.armed or timer_id not in self.timers:
            return
        due = self.timers[timer_id][0]
        clock = self.behaviour.agent.world.clock
        delay = max(at_least_s, clock.wall_delay(max(0.0, due - clock.now())))

        def fire() -> None:
            self.armed.pop(timer_id, None)
            if timer_id in self.timers and self.group.is_leader:
                self.submit(Entry(self.slot, TICK, str(timer_id), self.clock_now()))

        self.armed[timer_id] = asyncio.get_running_loop().call_later(delay, fire)

    # --- leadership ---------------------------------------------------------------------------

    async def take_over(self, resend_window_s: float) -> int:
        """This replica now leads: arm the timers, order what the old leader left, re-send
        its recent outputs (receivers drop duplicates by id). Returns messages re-sent."""
        for key, (_seen, entry) in list(self.pending.items()):
            self.resubmit(key, entry)
        # Deadlines that passed during the failover wait a little more: the inputs just
        # resubmitted (bids among them) should be ordered before the deadline's tick.
        for timer_id in list(self.timers):
            self.arm(timer_id, at_least_s=TAKEOVER_GRACE_S)
        if not self.recent:
            return 0
        newest = self.recent[-1][0]
        resent = 0
        for stamp, msg in list(self.recent):
            if stamp >= newest - resend_window_s:
                await self.behaviour.agent.send(msg, self.behaviour)
                resent += 1
        return resent

    def step_down(self) -> None:
        for handle in self.armed.values():
            handle.cancel()
        self.armed.clear()

    # --- state transfer -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: a transferred state is about to be replayed."""
        self.step_down()
        self.timers.clear()
        self.pending.clear()
        self.recent.clear()
        self.since_idle.clear()
        self.behaviour.reset_state()

    def snapshot(self) -> dict[str, Any]:
        return {"timer_base": self.timer_base,
                "log": [(seq, uid, ENCODER.encode(e)) for seq, uid, e in self.since_idle]}

    async def restore(self, state: dict[str, Any]) -> None:
        """Replay the log since this manager was last idle (outputs and timers muted)."""
        self.next_timer = self.timer_base = int(state["timer_base"])
        self.muted = True
        try:
            for seq, uid, raw in state["log"]:
                await self.apply(int(seq), DECODER.decode(raw), replay=True, uid=str(uid))
        finally:
            self.muted = False


class AppliedKeys:
    """Input ids already applied, in application order: the same at every replica."""

    def __init__(self, capacity: int = APPLIED_KEYS) -> None:
        self.capacity = capacity
        self.keys: collections.OrderedDict[str, None] = collections.OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def add(self, key: str) -> bool:
        if key in self.keys:
            return False
        self.keys[key] = None
        if len(self.keys) > self.capacity:
            self.keys.popitem(last=False)
        return True

    def dump(self) -> list[str]:
        return list(self.keys)

    def load(self, keys: list[str]) -> None:
        self.keys = collections.OrderedDict.fromkeys(keys)

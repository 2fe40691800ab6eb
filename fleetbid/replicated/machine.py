"""The AuctionManagers' state as one replicated state machine (`AuctionReplicas`).

Every replica host applies the group's total order (fleetbid.replication, ISIS over UDP
multicast) to the same ordered behaviours (`replicated.ordered`), so all hosts hold the same
state; `GroupPort` is the machine's view of the group (leader? member? submit).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from typing import Any

import msgspec

from fleetbid.behaviours.base import ProtocolBehaviour
from fleetbid.replicated.bidkeys import BidKeys
from fleetbid.replicated.ordered import DECODER, INPUT, AppliedKeys, OrderedSlot
from fleetbid.replication.api import Delivery, View
from fleetbid.replication.node import ReplicaNode

log = logging.getLogger("fleetbid.replicas")

BID_TYPES = frozenset({"group-best", "bid", "bid-declined"})
OVERDUE_CHECK_S = 0.1
DIGESTS_KEPT = 4096
RESEND_WINDOW_WALL_S = 2.0  # a new leader re-sends outputs of the last this-many wall seconds


class GroupPort:
    """The group as the ordered behaviours see it: leadership as of the last applied view,
    while the node is a full member (an expelled node goes back to standby at once)."""

    def __init__(self) -> None:
        self.node: ReplicaNode | None = None
        self.leads = False  # per the last view applied in order

    @property
    def is_member(self) -> bool:
        core = self.node.core if self.node is not None else None
        return core is not None and core.status == "member"

    @property
    def is_leader(self) -> bool:
        return self.leads and self.is_member

    def submit(self, payload: bytes) -> None:
        if self.node is None or not self.is_member:
            return
        try:
            future = self.node.submit(payload)
        except Exception as exc:  # not a member any more, stopping...: the pending copy stays
            log.debug("submit failed: %s", exc)
            return
        future.add_done_callback(_quiet)


def _quiet(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a lost submission is re-submitted from `pending`


class AuctionReplicas:
    """The replicated state machine of this host: every manager's ordered behaviour."""

    def __init__(self, port: GroupPort, member_id: int, report: Any) -> None:
        self.port = port
        self.member_id = member_id
        self.report = report  # callable(kind, payload) -> None: events for the launcher
        self.applied = AppliedKeys()
        self.slots: dict[str, OrderedSlot] = {}
        self.queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.seq = -1
        self.digest = b"\0" * 32
        self.digests: dict[int, str] = {}
        self.bid_keys = BidKeys()
        self.opened = 0
        self.view: View | None = None
        self.failovers = 0
        self.resent = 0

    def attach(self, behaviour: ProtocolBehaviour) -> None:
        slot = OrderedSlot(behaviour, self.port, self.applied)
        slot.slot = str(behaviour.agent.jid.bare)
        behaviour.ordered = slot
        # The law controller checks certificates against the clock: the ordered clock, so
        # every replica reaches the same verdict.
        behaviour.agent.controller.now = behaviour.now
        self.slots[slot.slot] = slot

    # --- StateMachine (called by the replication node, in total order) -----------------------

    def apply(self, delivery: Delivery) -> None:
        # Bookkeeping that must be current for a snapshot happens here, synchronously; the
        # behaviours run in `consume`, in the same order.
        self.seq = delivery.seq
        self.digest = hashlib.sha256(self.digest + delivery.payload).digest()
        self.digests[delivery.seq] = self.digest.hex()
        self.digests.pop(delivery.seq - DIGESTS_KEPT, None)
        try:
            entry = DECODER.decode(delivery.payload)
        except msgspec.DecodeError as exc:
            log.warning("undecodable entry %d from member %d: %s", delivery.seq,
                        delivery.sender, exc)
            return
        if entry.kind == INPUT:
            kind = entry.metadata.get("type", "")
            if kind in BID_TYPES:
                self.bid_keys.add(entry.metadata.get("conversation", ""),
                                  entry.sender.split("/")[0])
        uid = f"{delivery.sender}.{delivery.msg_id}"
        self.queue.put_nowait(("apply", delivery.seq, entry, uid))

    def on_view(self, view: View) -> None:
        self.queue.put_nowait(("view", view))

    def snapshot(self) -> bytes:
        queued = [(item[1], item[3], item[2])
                  for item in self.queue._queue  # type: ignore[attr-defined]
                  if item[0] == "apply"]
        state = {
            "seq": self.seq, "digest": self.digest, "opened": self.opened,
            "bid_keys": self.bid_keys.dump(), "applied": self.applied.dump(),
            "slots": {jid: slot.snapshot() for jid, slot in self.slots.items()},
            "queued": [(seq, uid, msgspec.msgpack.encode(e)) for seq, uid, e in queued],
        }
        return msgspec.msgpack.encode(state)

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.decode(data)
        self.seq, self.digest = state["seq"], state["digest"]
        self.digests = {self.seq: self.digest.hex()}
        self.opened = state["opened"]
        self.bid_keys.load(state["bid_keys"])
        self.applied.load(state["applied"])
        self.queue.put_nowait(("restore", state))
        self.port.leads = False

    # --- applying, in order ------------------------------------------------------------------

    async def consume(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self.step(item)
            except Exception:
                log.exception("replica %d failed to apply %s", self.member_id, item[0])

    async def step(self, item: tuple[Any, ...]) -> None:
        if item[0] == "apply":
            _, seq, entry, uid = item
            slot = self.slots.get(entry.slot)
            if slot is None:
                log.warning("entry %d for unknown manager %s ignored", seq, entry.slot)
                return
            opening = entry.kind == INPUT and entry.key not in self.applied \
                and entry.metadata.get("type") in ("open-auction", "open-batch")
            await slot.apply(seq, entry, uid=uid)
            if opening:
                self.opened += 1
                if self.port.is_leader:
                    self.report("event", {"kind": "opened", "count": self.opened})
        elif item[0] == "view":
            await self.install(item[1])
        elif item[0] == "restore":
            state = item[1]
            for slot in self.slots.values():  # an expelled replica may be recruited again
                slot.reset()
            for jid, slot_state in state["slots"].items():
                if jid in self.slots:
                    await self.slots[jid].restore(slot_state)
            for seq, uid, raw in state["queued"]:
                entry = DECODER.decode(raw)
                slot = self.slots.get(entry.slot)
                if slot is not None:
                    await slot.apply(seq, entry, uid=str(uid))

    async def install(self, view: View) -> None:
        before = self.view
        was_leader = self.port.is_leader
        self.view = view
        self.port.leads = view.leader == self.member_id
        self.report("event", {"kind": "view", "view_id": view.view_id,
                              "members": list(view.members), "leader": view.leader,
                              "member": self.member_id, "pid": os.getpid(),
                              "t": time.monotonic()})
        if self.port.is_leader and not was_leader:
            crashed = before is not None and before.leader not in view.members
            if crashed:
                self.failovers += 1
            speed = next(iter(self.slots.values())).behaviour.agent.world.clock.speed \
                if self.slots else 1.0
            for slot in self.slots.values():
                self.resent += await slot.take_over(RESEND_WINDOW_WALL_S * speed)
            self.report("event", {"kind": "leader", "member": self.member_id,
                                  "pid": os.getpid(), "crashed": crashed,
                                  "t": time.monotonic()})
        elif was_leader and not self.port.is_leader:
            for slot in self.slots.values():
                slot.step_down()

    async def watch_pending(self) -> None:
        """Resubmit inputs the group has not ordered in time (the leader may have died)."""
        while True:
            await asyncio.sleep(OVERDUE_CHECK_S)
            if self.port.is_member:
                now = time.monotonic()
                for slot in self.slots.values():
                    slot.overdue(now)

    def stats(self) -> dict[str, Any]:
        delays = sorted(d for slot in self.slots.values() for d in slot.order_delays)
        return {
            "order_ms_p50": round(1000 * delays[len(delays) // 2], 2) if delays else None,
            "order_ms_p99": round(1000 * delays[int(len(delays) * 0.99)], 2) if delays else None,
            "member": self.member_id, "leader": self.port.is_leader,
            "member_of_group": self.port.is_member, "seq": self.seq,
            "digests": dict(self.digests), "bid_keys": self.bid_keys.keys(),
            "bid_keys_evicted": self.bid_keys.evicted,
            "opened": self.opened, "failovers": self.failovers, "resent": self.resent,
            "view": None if self.view is None else list(self.view.members),
        }

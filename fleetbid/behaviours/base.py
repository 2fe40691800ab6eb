"""ProtocolBehaviour: receive, validate, dispatch to a handler; answer bad input politely.

Every fleetbid behaviour that reacts to messages derives from this. The rules it enforces:
a message that cannot be decoded, or whose type this role does not expect, gets
`not-understood`; a handler that will not act on a well-formed message raises `Rejected`
and the sender gets `refuse`. Both are logged, and handlers validate before they change
state, so bad input changes nothing. Replies to `not-understood`/`refuse` are never sent
(two confused agents must not loop).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

from spade.behaviour import CyclicBehaviour
from spade.message import Message

from fleetbid.core.text import loggable
from fleetbid.protocol import codec
from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

log = logging.getLogger("fleetbid.protocol")

Handler = Callable[[Message, Any], Awaitable[None]]
Cancellable = asyncio.TimerHandle | Any  # ordered mode returns its own handle with cancel()

# Message ids remembered per behaviour to drop duplicates (a new manager leader re-sends what
# it sent lately): those of the last SEEN_S wall seconds, at most SEEN_IDS. It was the last
# 4,096 for every behaviour: a vehicle's took hours to fill, and 50 vehicles' rings filling
# grew the soak's worker for its whole run (docs/soak.md).
SEEN_IDS = 1024
SEEN_S = 120.0


class Ordering(Protocol):
    """What a replicated role's behaviour hands its inputs, outputs and timers to
    (implemented by `replicated.ordered.OrderedSlot`)."""

    stamp: float

    def capture(self, msg: Message) -> None: ...

    def output(self, msg: Message) -> bool: ...

    def timer(self, sim_seconds: float, callback: Callable[[], Awaitable[None]]) -> Any: ...


class Late(Exception):
    """Raised by a handler for a message of a conversation that has already ended here (a
    bid, report or forward overtaken by the end of its auction). Under load this is normal
    traffic, not a fault: it is logged at debug level and not answered."""


class Ended:
    """The conversations that ended here lately (bounded): tells a late message (`Late`)
    from one about a conversation never seen (`Rejected`)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self.ids: collections.OrderedDict[str, None] = collections.OrderedDict()

    def add(self, conversation: str) -> None:
        self.ids[conversation] = None
        while len(self.ids) > self.capacity:
            self.ids.popitem(last=False)

    def __contains__(self, conversation: object) -> bool:
        return conversation in self.ids

    def clear(self) -> None:
        self.ids.clear()


class Rejected(Exception):
    """Raised by a handler, before any state change, to answer `refuse` with this reason."""


ERROR_REPLIES: frozenset[type[m.Body]] = frozenset({m.NotUnderstood, m.Refused})
# Sent by any role without declaring it: error replies, and the law's audit batches.
ALWAYS_ALLOWED: frozenset[type[m.Body]] = ERROR_REPLIES | {lm.AuditBatch}


def check_declared(sender: object, body: m.Body) -> None:
    """Raise TypeError unless `sender`'s class declares the body's type in its SENDS.

    Every behaviour says what it sends next to what it handles; the agent collects the
    declarations and checks them against the law at start-up (agents/fleet_agent.py), so an
    undeclared type fails loudly here rather than being blocked at run time."""
    declared: frozenset[type[m.Body]] = getattr(sender, "SENDS", frozenset())
    if type(body) not in declared and type(body) not in ALWAYS_ALLOWED:
        raise TypeError(f"{type(sender).__name__} sends {body.TYPE} "
                        f"({type(body).__name__}) but does not declare it in SENDS")


def sender_of(msg: Message) -> str:
    """The bare JID of the sender (XMPP deliveries carry a resource, in-process ones don't)."""
    return str(msg.sender.bare)


class ProtocolBehaviour(CyclicBehaviour):
    """Subclasses fill `handlers` in `on_start` (body type -> coroutine(msg, body)) and
    declare in `SENDS` every body type they send (error replies excepted)."""

    SENDS: ClassVar[frozenset[type[m.Body]]] = frozenset()
    # File the law's audit copies of a conversation after each send in it (the agent is done
    # with what it received). A role that files at a later, fixed point sets this False.
    AUDIT_ON_SEND: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.handlers: dict[type[m.Body], Handler] = {}
        # Handlers and timers take turns: state changes of one role never interleave.
        self.lock = asyncio.Lock()
        # Set on a replica of a replicated role: inputs go through the group's total order.
        self.ordered: Ordering | None = None
        # (sender, message id) -> when it arrived (time.monotonic), oldest first
        self.seen: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()

    def now(self) -> float:
        """Simulated time for handlers: on a replica, the ordered entry's stamp, so every
        replica computes the same deadlines."""
        if self.ordered is not None:
            return self.ordered.stamp
        return float(self.agent.world.clock.now())

    def reset_state(self) -> None:
        """Back to the state at start (a replica about to replay a transferred log)."""

    def idle(self) -> bool:
        """True when the role holds no state worth replaying (see behaviours.ordered)."""
        return False

    async def run(self) -> None:
        msg = await self.receive(timeout=5.0)
        if msg is None:
            return
        if self.ordered is not None:
            self.ordered.capture(msg)
            return
        if self.duplicate(msg):
            return
        async with self.lock:
            try:
                await self.handle(msg)
            except Exception:
                # A bug must not kill the behaviour (spade would leave the agent deaf).
                log.exception("%s: failed to handle a message from %s", self.agent.name,
                              loggable(msg.sender))

    def duplicate(self, msg: Message) -> bool:
        """A copy of a message already handled (a new manager leader re-sends)?"""
        mid = msg.get_metadata("mid")
        if not mid:
            return False
        key = (str(msg.sender.bare), mid)
        if key in self.seen:
            log.debug("%s: duplicate %s from %s dropped", self.agent.name, loggable(mid),
                      loggable(msg.sender))
            return True
        now = time.monotonic()
        self.seen[key] = now
        while self.seen and (len(self.seen) > SEEN_IDS
                             or next(iter(self.seen.values())) < now - SEEN_S):
            self.seen.popitem(last=False)
        return False

    async def handle(self, msg: Message) -> None:
        try:
            body = codec.decode(msg)
        except codec.ProtocolError as exc:
            log.warning("%s: not-understood from %s: %s", self.agent.name, loggable(msg.sender),
                        loggable(exc))
            await self.reply_error(msg, m.NotUnderstood(reason=str(exc), in_reply_to=_kind(msg)))
            return
        if isinstance(body, m.NotUnderstood | m.Refused):
            await self.on_error_reply(msg, body)
            return
        controller = getattr(self.agent, "controller", None)
        refusal = controller.on_receive(msg, body) if controller is not None else None
        if refusal is not None:  # the law controller blocks it before any handler sees it
            log.warning("%s: law refuses %s from %s: %s", self.agent.name, body.TYPE,
                        loggable(msg.sender), loggable(refusal))
            await self.reply_error(msg, m.Refused(reason=refusal[:500], in_reply_to=body.TYPE))
            return
        handler = self.handlers.get(type(body))
        if handler is None and isinstance(body, lm.Revoked):
            return  # for the law controller only (it keeps the revocation)
        if handler is None:
            reason = f"{self.agent.name} does not expect {body.TYPE}"
            log.warning("%s: not-understood from %s: %s", self.agent.name, loggable(msg.sender),
                        reason)
            await self.reply_error(msg, m.NotUnderstood(reason=reason, in_reply_to=body.TYPE))
            return
        # The law's audit copy is taken before the handler runs (it may file the auction's
        # copies itself) and dropped again if the handler will not act on the message.
        copy = controller.copy_received(msg, body) if controller is not None else None
        try:
            await handler(msg, body)
        except Late as exc:
            if copy is not None:
                controller.discard(copy)
            log.debug("%s: late %s from %s ignored: %s", self.agent.name, body.TYPE,
                      loggable(msg.sender), loggable(exc))
        except Rejected as exc:
            if copy is not None:
                controller.discard(copy)
            log.warning("%s: refuse %s from %s: %s", self.agent.name, body.TYPE,
                        loggable(msg.sender), loggable(exc))
            await self.reply_error(msg, m.Refused(reason=str(exc), in_reply_to=body.TYPE))

    async def on_error_reply(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        """Someone could not or would not act on what we sent: log it (never answer it)."""
        log.warning("%s: %s from %s: %s", self.agent.name, body.TYPE, loggable(msg.sender),
                    loggable(body.reason))

    async def reply_error(self, msg: Message, body: m.NotUnderstood | m.Refused) -> None:
        if _kind(msg) in (m.NotUnderstood.TYPE, m.Refused.TYPE) or not str(msg.sender):
            return
        conversation = (msg.get_metadata("conversation") or "")[:64]
        await self.tell(str(msg.sender.bare), body, conversation=conversation)

    async def tell(
        self, to: str, body: m.Body, conversation: str | None = None, performative: str = ""
    ) -> None:
        """Send one protocol message (counted, traced) from this behaviour."""
        check_declared(self, body)
        msg = codec.encode(to, body, conversation, performative)
        # A follower replica sends nothing: the leader does.
        if self.ordered is None or self.ordered.output(msg):
            await self.agent.send(msg, self)
        if self.AUDIT_ON_SEND and not isinstance(body, lm.AuditBatch):
            await self.file_audit(msg.get_metadata("conversation") or "")

    async def file_audit(self, conversation: str) -> None:
        """Send the auditor this agent's copies of `conversation` (one batch, if any)."""
        controller = getattr(self.agent, "controller", None)
        batch = controller.take_audit(conversation) if controller and conversation else None
        if batch is not None:
            await self.tell(batch.auditor, batch.body, conversation=conversation)

    def later(self, sim_seconds: float, callback: Callable[[], Awaitable[None]]) -> Cancellable:
        """Run `callback` after `sim_seconds` of simulated time, under the behaviour's lock."""
        if self.ordered is not None:
            return self.ordered.timer(sim_seconds, callback)

        async def fire() -> None:
            async with self.lock:
                await callback()

        def spawn() -> None:
            if not self.is_killed():
                task = asyncio.ensure_future(fire())
                task.add_done_callback(_log_failure)

        delay = self.agent.world.clock.wall_delay(sim_seconds)
        return asyncio.get_running_loop().call_later(delay, spawn)


def _kind(msg: Message) -> str:
    return (msg.get_metadata("type") or "")[:64]


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("timer failed", exc_info=task.exception())


class AcknowledgedBids(ProtocolBehaviour):
    """A bidder (a vehicle, or a proxy for its group): a replicated manager confirms a bid is
    in its log, and the run checks no acknowledged bid is lost."""

    async def on_bid_received(self, msg: Message, body: m.BidReceived) -> None:
        if sender_of(msg) not in self.agent.managers:
            raise Rejected(f"{sender_of(msg)} is not an auction manager")
        self.agent.bids_acknowledged.add(body.auction_id)

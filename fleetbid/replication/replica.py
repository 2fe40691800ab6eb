"""The sans-IO replica: ISIS total order, heartbeats, failure handling, open-group requests.

View changes and state transfer are in viewchange.py (a mixin of Replica).
It talks only to a Transport and a Clock, so the same code runs on real UDP (node.py) and on
the simulated network (simnet.py). See docs/replication.md for the protocol.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, deque
from collections.abc import Callable

import msgspec

from fleetbid.replication import messages as M
from fleetbid.replication.api import (
    Delivery,
    GroupConfig,
    GroupStatus,
    ReplicationError,
    StateMachine,
    View,
)
from fleetbid.replication.clock import Clock, Handle
from fleetbid.replication.isis import VIEW_SENDER, HoldBack, HoldEntry, Outgoing
from fleetbid.replication.manager import Recruiter
from fleetbid.replication.membership import FailureDetector, coordinator, quorum
from fleetbid.replication.reliable import Endpoint
from fleetbid.replication.transport import DISCOVERY, GROUP, Transport
from fleetbid.replication.viewchange import (
    LOG_LEN,
    MEMBER,
    STANDBY,
    ViewChange,
    _Coord,
)
from fleetbid.replication.watchdog import Watchdog
from fleetbid.replication.wire import Kind

log = logging.getLogger(__name__)

MAX_QUEUED = 10000  # messages held while frozen or from not-yet-installed members
CLIENT_REQS = 1024  # remembered requests per client (duplicate suppression)
MAX_CLIENTS = 4096
# ... and in all: a client retries a request only until it is answered (client_timeout_s per
# member tried), so only recent ones matter; 1024 x 4096 could hold 4 million.
CLIENT_REQS_TOTAL = 65536

_enc = msgspec.msgpack.Encoder()
_DEC = {
    Kind.HEARTBEAT: msgspec.msgpack.Decoder(M.Heartbeat),
    Kind.MSG: msgspec.msgpack.Decoder(M.Msg),
    Kind.PROPOSE: msgspec.msgpack.Decoder(M.Propose),
    Kind.AGREED: msgspec.msgpack.Decoder(M.Agreed),
    Kind.AGREED_OK: msgspec.msgpack.Decoder(M.AgreedOk),
    Kind.FLUSH: msgspec.msgpack.Decoder(M.Flush),
    Kind.FLUSH_OK: msgspec.msgpack.Decoder(M.FlushOk),
    Kind.INSTALL: msgspec.msgpack.Decoder(M.Install),
    Kind.INSTALL_OK: msgspec.msgpack.Decoder(M.InstallOk),
    Kind.COMMIT: msgspec.msgpack.Decoder(M.Commit),
    Kind.JOIN: msgspec.msgpack.Decoder(M.Install),
    Kind.STATE: msgspec.msgpack.Decoder(M.State),
    Kind.DISCOVER: msgspec.msgpack.Decoder(M.Discover),
    Kind.OFFER: msgspec.msgpack.Decoder(M.Offer),
    Kind.CLIENT_SUBMIT: msgspec.msgpack.Decoder(M.ClientSubmit),
}



class Replica(ViewChange, Watchdog):
    def __init__(self, config: GroupConfig, member_id: int, machine: StateMachine,
                 transport: Transport, clock: Clock, *, initial_members: tuple[int, ...] = (),
                 standby: bool = False, incarnation: int = 0) -> None:
        if not 0 <= member_id < 2**31:
            raise ValueError("member_id must be in 0..2**31-1")
        if not standby and member_id not in initial_members:
            raise ValueError("a non-standby replica must be one of initial_members")
        self.config = config
        self.id = member_id
        self.machine = machine
        self.clock = clock
        self.transport = transport
        self.counters: Counter[str] = Counter()
        self.ep = Endpoint(config, member_id, transport, clock, incarnation, self._on_message,
                           self.counters)
        self.fd = FailureDetector(config.failure_timeout_s, config.startup_grace_s)
        self.recruiter = Recruiter(config.target_size, config.recruit_interval_s)
        self._initial = tuple(sorted(set(initial_members)))
        self.status = STANDBY if standby else MEMBER
        self.view: View | None = None  # the last view delivered (what the application saw)
        self.members: tuple[int, ...] = ()  # the last view installed (protocol membership)
        self.installed_vid = 0
        self.highest_vid = 0
        self.frozen = False
        self.flush_key: tuple[int, int] | None = None
        self.flush_members: frozenset[int] = frozenset()
        self.coord: _Coord | None = None
        self.accepted: M.Install | None = None  # accepted for our flush, not yet committed
        self.early_commit: tuple[int, int] | None = None  # a COMMIT that overtook its INSTALL
        self.pending_state: dict[int, tuple[int, ...]] = {}  # view id -> joiners to send to
        self.hold = HoldBack()
        # Who holds a message agreed (sender, mid) -> members: delivered once a majority
        # does, so a view change that excludes us (while we still run) cannot drop it.
        self.oks: dict[tuple[int, int], set[int]] = {}
        self.max_seq = 0
        self.position = 0  # message entries delivered (duplicates of client requests too)
        self.applied = 0  # deliveries handed to the state machine: Delivery.seq
        self.log: deque[M.Entry] = deque()
        # Order key of the last entry delivered (or covered by a restored snapshot): anything
        # ordered at or below it has been delivered here already.
        self.cut: tuple[int, int, int, int] = (-1, -1, -1, -1)
        self.delivered_keys: set[tuple[int, int]] = set()
        self.out: dict[int, Outgoing] = {}
        # Message ids start at the incarnation (wall-clock µs in real processes), so a restarted
        # process never reuses an id: (sender, msg id) names one message for ever.
        self.next_mid = max(1, incarnation)
        self.callbacks: dict[int, Callable[[Delivery], None]] = {}
        self.queued_msgs: list[tuple[int, M.Msg]] = []
        self.queued_submits: list[tuple[int, bytes, int, int]] = []
        self.queued_agreed: list[tuple[int, M.Agreed]] = []  # of a view we wait to install
        self.clients: dict[int, OrderedDict[int, tuple[int, int, int]]] = {}
        self.client_reqs = 0  # requests remembered in all of `clients`
        self.client_waiters: set[tuple[int, int]] = set()
        self.view_listeners: list[Callable[[View], None]] = []
        # Called with the msg ids of our submissions that will never be delivered here.
        self.lost_listeners: list[Callable[[list[int]], None]] = []
        self.join_view = (0, 0, 0)  # (view id, view position, coordinator) while joining
        self.frozen_since: dict[int, float] = {}  # members reporting an unfinished flush
        self.stateless: set[int] = set()  # recruited members not yet known to have the state
        self.joined_vid = 0  # messages sent in views before we joined are in our snapshot
        # Member -> the view it (re)joined in: its MSGs of older views are from before it was
        # excluded (late retransmissions); it forgot them, so nobody could agree them.
        self.joined_at: dict[int, int] = {}
        self.early_state: M.State | None = None  # a STATE that overtook its JOIN
        self._tick: Handle | None = None
        self.running = False
        # Watchdog (see _watchdog): since when and why we make no progress, and the alarm.
        self.stuck_since: float | None = None
        self.stuck_reason = ""
        self.alarm = False
        self._retry_at = 0.0
        self.status_listeners: list[Callable[[GroupStatus], None]] = []

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        now = self.clock.now()
        if self.status == MEMBER:
            self.members = self._initial
            self.installed_vid = self.highest_vid = 1
            self.fd.watch(self.members, now)
            self.transport.subscribe(GROUP)
            self._set_view(View.of(1, self.members))
        else:
            self.transport.subscribe(DISCOVERY)
        self._schedule_tick()

    def stop(self) -> None:
        self.running = False
        if self._tick is not None:
            self._tick.cancel()
        self.ep.close()

    @property
    def is_leader(self) -> bool:
        return self.status == MEMBER and bool(self.members) and self.members[-1] == self.id

    # -- submitting ----------------------------------------------------------------------
    def submit(self, payload: bytes, callback: Callable[[Delivery], None] | None = None, *,
               client: int = -1, req: int = -1) -> int:
        """Submits into the total order; `callback` runs when it is delivered here."""
        if self.status == STANDBY or not self.running:
            raise ReplicationError(f"replica {self.id} is not a member of the group")
        if not isinstance(payload, bytes):
            raise TypeError("payload must be bytes")
        mid = self.next_mid
        self.next_mid += 1
        if callback is not None:
            self.callbacks[mid] = callback
        if self.frozen or self.status != MEMBER:
            self.queued_submits.append((mid, payload, client, req))
        else:
            self._send_msg(mid, payload, client, req)
        return mid

    def _send_msg(self, mid: int, payload: bytes, client: int, req: int) -> None:
        others = {m for m in self.members if m != self.id}
        o = Outgoing(mid, payload, client, req, others)
        self.out[mid] = o
        if others:
            self.ep.send(others, Kind.MSG,
                         _enc.encode(M.Msg(mid, payload, client, req, self.installed_vid)),
                         multicast=True)
        p = self.max_seq = self.max_seq + 1
        self.hold.add(HoldEntry(self.id, mid, payload, client, req, p, self.id))
        o.proposals[self.id] = p
        self._maybe_finalize(o)

    def _maybe_finalize(self, o: Outgoing) -> None:
        if self.frozen:
            return  # agreeing during a view change could order past the view's position
        props = o.proposals
        for m in self.members:
            if m not in props:
                return
        seq, tie = o.agreed_key()
        del self.out[o.mid]
        others = [m for m in self.members if m != self.id]
        if others:
            self.ep.send(others, Kind.AGREED,
                         _enc.encode(M.Agreed(o.mid, seq, tie, self.installed_vid)),
                         multicast=True)
        e = self.hold.entries.get((self.id, o.mid))
        if e is not None:
            self.hold.agree(e, seq, tie)
            self._held_agreed(e, (self.id,))  # our AGREED is our confirmation
        if seq > self.max_seq:
            self.max_seq = seq
        self._deliver()

    # -- receiving -----------------------------------------------------------------------
    def _on_message(self, sender: int, kind: int, body: bytes) -> None:
        if kind == Kind.CLIENT_RESULT:
            self.counters["dropped_unexpected"] += 1
            return
        dec = _DEC.get(kind)  # type: ignore[call-overload]
        if dec is None:
            self.counters["dropped_unexpected"] += 1
            return
        try:
            msg = dec.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counters["dropped_bad_body"] += 1
            log.debug("replica %d: bad body of kind %d from %d", self.id, kind, sender)
            return
        handler = self._handlers[kind]
        try:
            handler(self, sender, msg)
        except (ValueError, TypeError) as exc:  # nonsense that passed the schema
            self.counters["dropped_invalid"] += 1
            log.warning("replica %d: rejected %s from %d: %s", self.id, Kind(kind).name,
                        sender, exc)

    def _on_heartbeat(self, sender: int, hb: M.Heartbeat) -> None:
        now = self.clock.now()
        self.fd.heard(sender, now)
        if hb.ready and hb.view_id == self.installed_vid:
            self.stateless.discard(sender)
        if sender in self.members:
            self.highest_vid = max(self.highest_vid, hb.highest_vid)
            if hb.frozen:
                self.frozen_since.setdefault(sender, now)
            else:
                self.frozen_since.pop(sender, None)
        if (self.status != STANDBY and hb.view_id > self.installed_vid
                and sender in self.members and self.id not in hb.members):
            log.warning("replica %d: excluded from view %d; becoming a standby",
                        self.id, hb.view_id)
            self._become_standby()

    def _left_out(self, vid: int, what: str) -> bool:
        """A MSG or AGREED sent in view `vid`, newer than the installed one, at a member.

        Unless we answered that view's flush (we are frozen for it; its INSTALL is on the
        way), it was installed without us: we were excluded (falsely suspected, e.g. while
        stalled) or a view change passed us by. Delivering anything of it would fork our
        sequence from the others', so we deliver nothing more and become a standby: the
        leader recruits us back with a state transfer. True if that happened.
        """
        if vid <= self.installed_vid or self.status != MEMBER:
            return False
        if self.frozen and self.flush_key is not None and self.flush_key[0] >= vid:
            return False
        log.warning("replica %d: %s of view %d while in view %d: excluded; becoming a "
                    "standby", self.id, what, vid, self.installed_vid)
        self.counters["excluded_newer_view"] += 1
        self._become_standby()
        return True

    def _on_msg(self, sender: int, msg: M.Msg) -> None:
        if self.status == STANDBY and msg.vid <= self.installed_vid:
            self.counters["dropped_not_member"] += 1
            return
        if self._left_out(msg.vid, "MSG"):
            return
        if (self.frozen or sender not in self.members or self.status == STANDBY
                or msg.vid > self.installed_vid):
            # Held: processed after the view change (or dropped if the sender is not in it).
            if len(self.queued_msgs) < MAX_QUEUED:
                self.queued_msgs.append((sender, msg))
            else:
                self.counters["dropped_queue_full"] += 1
            return
        self._propose(sender, msg)

    def _propose(self, sender: int, msg: M.Msg) -> None:
        if msg.vid < self.joined_at.get(sender, 0):
            self.counters["dropped_stale_msg"] += 1
            return
        key = (sender, msg.mid)
        e = self.hold.entries.get(key)
        if e is not None:
            seq = e.seq  # the same MSG again (a resend): repeat our proposal
        elif key in self.delivered_keys:
            return
        else:
            seq = self.max_seq = self.max_seq + 1
            self.hold.add(HoldEntry(sender, msg.mid, msg.payload, msg.client, msg.req, seq,
                                    self.id))
        self.ep.send((sender,), Kind.PROPOSE,
                     _enc.encode(M.Propose(msg.mid, seq, self.installed_vid)))

    def _on_propose(self, sender: int, p: M.Propose) -> None:
        o = self.out.get(p.mid)
        if o is None or sender not in self.members:
            return
        if p.vid and p.vid < self.joined_at.get(sender, 0):
            self.counters["dropped_stale_propose"] += 1  # from before it was recruited again
            return
        o.proposals[sender] = p.seq
        self._maybe_finalize(o)

    def _on_agreed(self, sender: int, a: M.Agreed) -> None:
        if self.status == STANDBY:
            return  # nothing held: a recruit proposes only after its JOIN
        if self.frozen and sender not in self.flush_members:
            self.counters["dropped_departed"] += 1
            return
        if self._left_out(a.vid, "AGREED"):
            return
        if a.vid > self.installed_vid and not self.frozen:
            # A recruit whose JOIN is on the way: applied once that view is installed.
            if len(self.queued_agreed) < MAX_QUEUED:
                self.queued_agreed.append((sender, a))
            return
        e = self.hold.entries.get((sender, a.mid))
        if e is None or e.agreed:
            return
        if (a.seq, a.tie) < (e.seq, e.tie):
            raise ValueError("agreed sequence below our proposal")
        self.hold.agree(e, a.seq, a.tie)
        if a.seq > self.max_seq:
            self.max_seq = a.seq
        # Tell who still needs it: with 3 members or fewer, the sender's AGREED and one's own
        # copy are a majority already at every receiver; only the sender counts on us.
        n = len(self.members)
        to = [m for m in self.members if m != self.id] if n > 3 else [sender]
        if to and to != [self.id]:
            self.ep.send(to, Kind.AGREED_OK, _enc.encode(M.AgreedOk(sender, a.mid)),
                         multicast=len(to) > 1)
        self._held_agreed(e, (sender, self.id))
        self._deliver()

    def _on_agreed_ok(self, sender: int, ok: M.AgreedOk) -> None:
        if self.status == STANDBY or sender not in self.members:
            return
        key = (ok.sender, ok.mid)
        if len(self.oks) >= MAX_QUEUED and key not in self.oks:
            self.oks = {k: v for k, v in self.oks.items() if k in self.hold.entries}
        e = self.hold.entries.get(key)
        if e is None and key in self.delivered_keys:
            return
        if e is not None and e.agreed:
            self._held_agreed(e, (sender,))
            self._deliver()
        else:
            self.oks.setdefault(key, set()).add(sender)  # before its AGREED reached us

    def _held_agreed(self, e: HoldEntry, holders: tuple[int, ...]) -> None:
        """Counts members known to hold `e` agreed; stable (deliverable) at a quorum (a
        majority, or the leader's half of an even view: membership.quorum).

        A majority intersects the survivors of any later view (primary partition), and each
        reports what it holds agreed in its FLUSH_OK: the message stays, at the same place.
        """
        if e.stable:
            return
        key = (e.sender, e.mid)
        got = self.oks.setdefault(key, set())
        got.update(holders)
        if quorum(got, self.members):
            e.stable = True
            del self.oks[key]

    # -- delivery ------------------------------------------------------------------------
    def _deliver(self) -> None:
        if self.frozen or self.status != MEMBER:
            return
        hold = self.hold
        while True:
            e = hold.pop_deliverable()
            if e is None:
                return
            key = (e.seq, e.tie, e.sender, e.mid)
            if key <= self.cut or (e.sender, e.mid) in self.delivered_keys:
                # Agreed before the view whose snapshot we restored: it is in the snapshot.
                self.counters["skipped_in_snapshot"] += 1
                continue
            self.cut = key
            if e.sender == VIEW_SENDER:
                self._deliver_view(e)
                continue
            self._remember(M.Entry(e.sender, e.mid, e.payload, e.client, e.req, e.seq, e.tie,
                                   True, self.position))
            self.position += 1
            result = None
            if e.client >= 0:
                result = self._client_seen(e.client, e.req)
            if result is None:
                d = Delivery(self.applied, e.sender, e.mid, e.payload,
                             self.view.view_id if self.view is not None else 0)
                self.applied += 1
                if e.client >= 0:
                    self._client_record(e.client, e.req, (d.seq, d.sender, d.msg_id))
                    result = (d.seq, d.sender, d.msg_id)
                self.machine.apply(d)
                if e.sender == self.id:
                    cb = self.callbacks.pop(e.mid, None)
                    if cb is not None:
                        cb(d)
            elif e.sender == self.id:
                self.callbacks.pop(e.mid, None)  # a client's duplicate: not applied again
            if e.client >= 0 and (e.client, e.req) in self.client_waiters:
                self._client_reply(e.client, e.req, result)

    def _remember(self, entry: M.Entry) -> None:
        self.log.append(entry)
        self.delivered_keys.add((entry.sender, entry.mid))
        if len(self.log) > LOG_LEN:
            old = self.log.popleft()
            self.delivered_keys.discard((old.sender, old.mid))

    def _deliver_view(self, e: HoldEntry) -> None:
        view = e.view
        assert isinstance(view, View)
        joiners = self.pending_state.pop(view.view_id, None)
        if joiners:
            # The snapshot is taken exactly at the view's position in the total order.
            snap = self.machine.snapshot()
            st = M.State(view.view_id, e.seq, self.position, self.applied, snap,
                         self._clients_table(), list(self.log))
            body = _enc.encode(st)
            self.ep.send(joiners, Kind.STATE, body)
            self.counters["state_sent"] += 1
        self._set_view(view)

    def _set_view(self, view: View) -> None:
        self.view = view
        self.machine.on_view(view)
        for cb in self.view_listeners:
            cb(view)

    # -- open group: clients -------------------------------------------------------------
    def _on_client_submit(self, sender: int, cs: M.ClientSubmit) -> None:
        if self.status != MEMBER:
            self.counters["dropped_not_member"] += 1
            return
        done = self._client_seen(sender, cs.req)
        if done is not None:
            self._client_reply(sender, cs.req, done)
            return
        if (sender, cs.req) in self.client_waiters:
            return
        self.client_waiters.add((sender, cs.req))
        self.submit(cs.payload, client=sender, req=cs.req)

    def _client_seen(self, client: int, req: int) -> tuple[int, int, int] | None:
        tbl = self.clients.get(client)
        return None if tbl is None else tbl.get(req)

    def _client_record(self, client: int, req: int, result: tuple[int, int, int]) -> None:
        tbl = self.clients.get(client)
        if tbl is None:
            if len(self.clients) >= MAX_CLIENTS:  # deterministic: the same at every replica
                self.client_reqs -= len(self.clients.pop(next(iter(self.clients))))
            tbl = self.clients[client] = OrderedDict()
        tbl[req] = result
        self.client_reqs += 1
        if len(tbl) > CLIENT_REQS:
            tbl.popitem(last=False)
            self.client_reqs -= 1
        while self.client_reqs > CLIENT_REQS_TOTAL:
            # Deterministic (the same at every replica): the oldest client's oldest request.
            first = next(iter(self.clients))
            oldest = self.clients[first]
            oldest.popitem(last=False)
            self.client_reqs -= 1
            if not oldest:
                del self.clients[first]

    def _client_reply(self, client: int, req: int, result: tuple[int, int, int] | None) -> None:
        self.client_waiters.discard((client, req))
        if result is not None:
            self.ep.send((client,), Kind.CLIENT_RESULT,
                         _enc.encode(M.ClientResult(req, *result)))

    def _clients_table(self) -> list[tuple[int, list[tuple[int, int, int, int]]]]:
        return [(c, [(r, *v) for r, v in tbl.items()]) for c, tbl in self.clients.items()]

    # -- periodic: heartbeats, failure detection, recruitment ----------------------------
    def _schedule_tick(self) -> None:
        self._tick = self.clock.call_later(self.config.heartbeat_s, self._on_tick)

    def _on_tick(self) -> None:
        if not self.running:
            return
        self._schedule_tick()
        if self.status == STANDBY:
            return
        now = self.clock.now()
        if self.status == MEMBER:
            self.stateless.discard(self.id)
        self.ep.send_unreliable(None, Kind.HEARTBEAT,
                                _enc.encode(M.Heartbeat(self.installed_vid, list(self.members),
                                                           self.status == MEMBER, self.frozen,
                                                           self.highest_vid)))
        watch = set(self.members)
        if self.coord is not None:
            watch.update(self.coord.members)
        suspects = self.fd.suspected(watch - {self.id}, now)
        self._watchdog(now, suspects)
        if self.coord is not None:
            c = self.coord
            if suspects & set(c.members) or now - c.started > 2 * self.config.failure_timeout_s:
                # A member died, or one refused our flush for a rival's (it never answers):
                # start over with a higher view id.
                self._start_flush(tuple(m for m in c.members if m not in suspects),
                                  tuple(j for j in c.joiners if j not in suspects))
            return
        down = suspects & set(self.members)
        # Our own flush that stopped for want of a quorum: retry it (everyone is frozen).
        abandoned = self.frozen and self.flush_key is not None and self.flush_key[1] == self.id
        if down or abandoned:
            if (self.frozen and self.flush_key is not None and self.flush_key[1] not in down
                    and not abandoned):
                return  # a live coordinator is already changing the view
            # Bully rule among members holding the state; a recruit still waiting for its
            # state cannot lead the change and is recruited again by it.
            if coordinator(set(self.members) - self.stateless, down) == self.id:
                keep = tuple(m for m in self.members if m not in down)
                self._start_flush(keep, tuple(m for m in keep if m in self.stateless))
            return
        if (not self.frozen and self.status == MEMBER and self.frozen_since
                and coordinator(set(self.members) - self.stateless, suspects) == self.id
                and now - min(self.frozen_since.values()) > 2 * self.config.failure_timeout_s):
            # Members stuck in a view change whose coordinator gave up (it lost its quorum
            # while suspecting us): as the bully winner, run one that frees them.
            self.frozen_since.clear()
            self._start_flush(self.members, tuple(m for m in self.members
                                                  if m in self.stateless))
            return
        if self.is_leader and not self.frozen and self.status == MEMBER:
            self._recruit(now)

    def _recruit(self, now: float) -> None:
        if self.recruiter.should_discover(len(self.members), now):
            self.ep.send_unreliable(None, Kind.DISCOVER,
                                    _enc.encode(M.Discover(self.installed_vid, self.id)),
                                    channel=DISCOVERY)
        joiners = tuple(self.recruiter.candidates(self.members, now))
        if joiners:
            self.recruiter.taken(joiners)
            self.fd.watch(joiners, now)
            self._start_flush(tuple(sorted(set(self.members) | set(joiners))),
                              tuple(sorted(set(joiners) | (self.stateless & set(self.members)))))

    def _on_discover(self, sender: int, d: M.Discover) -> None:
        if self.status == STANDBY:
            self.ep.send_unreliable(sender, Kind.OFFER, _enc.encode(M.Offer(self.id)))

    def _on_offer(self, sender: int, o: M.Offer) -> None:
        if o.member != sender:
            raise ValueError("offer for another host")
        now = self.clock.now()
        self.fd.heard(sender, now)
        if self.is_leader:
            self.recruiter.offer(sender, now)

    _handlers: dict[int, Callable] = {
        Kind.HEARTBEAT: _on_heartbeat,
        Kind.MSG: _on_msg,
        Kind.PROPOSE: _on_propose,
        Kind.AGREED: _on_agreed,
        Kind.AGREED_OK: _on_agreed_ok,
        Kind.FLUSH: ViewChange._on_flush,
        Kind.FLUSH_OK: ViewChange._on_flush_ok,
        Kind.INSTALL: ViewChange._on_install,
        Kind.INSTALL_OK: ViewChange._on_install_ok,
        Kind.COMMIT: ViewChange._on_commit,
        Kind.JOIN: ViewChange._on_join,
        Kind.STATE: ViewChange._on_state,
        Kind.DISCOVER: _on_discover,
        Kind.OFFER: _on_offer,
        Kind.CLIENT_SUBMIT: _on_client_submit,
    }

"""View changes: the virtual-synchrony flush, installing views, recruits and state transfer.

A mixin of Replica (replica.py), which holds the state these methods work on; see
docs/replication.md, "Membership" and "Replication manager".
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from fleetbid.replication import messages as M
from fleetbid.replication.api import View
from fleetbid.replication.isis import VIEW_SENDER, HoldBack, HoldEntry
from fleetbid.replication.membership import quorum
from fleetbid.replication.transport import DISCOVERY, GROUP
from fleetbid.replication.wire import Kind

log = logging.getLogger(__name__)

LOG_LEN = 1024  # delivered entries kept for view changes (a lagging member catches up)
STANDBY, JOINING, MEMBER = "standby", "joining", "member"
_enc = msgspec.msgpack.Encoder()
_members_dec = msgspec.msgpack.Decoder(list[int])


@dataclass
class _Coord:
    vid: int
    members: tuple[int, ...]
    joiners: tuple[int, ...]
    started: float = 0.0
    replies: dict[int, M.FlushOk] = field(default_factory=dict)
    install: M.Install | None = None  # sent; waiting for a majority to accept it
    accepts: set[int] = field(default_factory=set)


class ViewChange:
    """View-change half of Replica (uses its attributes)."""

    # -- view change: coordinator side ---------------------------------------------------
    def _start_flush(self, members: tuple[int, ...], joiners: tuple[int, ...]) -> None:
        members = tuple(sorted(set(members)))
        survivors = set(members) - set(joiners)
        if self.config.primary_partition and not quorum(survivors, self.members):
            # Without a majority of the current view we may be the cut-off side of a
            # partition (or a stalled process): changing the view could split the brain.
            # Joiners do not count: they answer no flush, so two rival coordinators could
            # both count the same recruit.
            self.counters["no_quorum"] += 1
            self.coord = None
            return
        vid = self.highest_vid = max(self.highest_vid, self.installed_vid) + 1
        log.info("replica %d: view change %d -> members %s (joiners %s)", self.id, vid,
                 members, joiners)
        self.counters["view_changes_started"] += 1
        self.coord = _Coord(vid, members, tuple(joiners), self.clock.now())
        survivors = [m for m in members if m not in joiners and m != self.id]
        body = _enc.encode(M.Flush(vid, list(members), list(joiners)))
        if survivors:
            self.ep.send(survivors, Kind.FLUSH, body, multicast=True)
        self._on_flush(self.id, M.Flush(vid, list(members), list(joiners)))

    def _on_flush_ok(self, sender: int, fo: M.FlushOk) -> None:
        c = self.coord
        if (c is None or c.install is not None or fo.vid != c.vid or sender not in c.members
                or sender in c.joiners):
            return
        if sender not in c.replies:
            c.started = self.clock.now()  # progress: the restart timeout counts from here
        c.replies[sender] = fo
        self._maybe_install()

    def _maybe_install(self) -> None:
        c = self.coord
        assert c is not None
        survivors = [m for m in c.members if m not in c.joiners]
        if any(m not in c.replies for m in survivors):
            return
        replies = [c.replies[m] for m in survivors]
        view_seq = max(r.max_seq for r in replies) + 1
        with_state = [r.delivered for r in replies if not r.needs_state]
        min_pos = min(with_state) if with_state else 0
        merged: dict[tuple[int, int], M.Entry] = {}
        for r in replies:
            for e in r.entries:
                key = (e.sender, e.mid)
                cur = merged.get(key)
                if cur is None or _rank(e) > _rank(cur):
                    merged[key] = e
        agreed = [e for e in merged.values()
                  if (e.pos >= min_pos) or (e.pos < 0 and e.agreed)]
        rival = max((e.mid for e in agreed if e.sender == VIEW_SENDER), default=0)
        if rival >= c.vid:
            # A survivor accepted a rival's install of this view id (or a later one): start
            # over above it, so both views are delivered, one after the other.
            self.highest_vid = max(self.highest_vid, rival)
            self._start_flush(c.members, c.joiners)
            return
        logged = [e.pos for e in merged.values() if e.pos >= 0]
        if logged and min(logged) > min_pos:
            log.warning("replica %d: a survivor lags more than %d deliveries; it cannot catch "
                        "up from the logs", self.id, LOG_LEN)
        joiners = tuple(sorted(set(c.joiners) | {m for m in survivors
                                                 if c.replies[m].needs_state}))
        inst = M.Install(c.vid, list(c.members), list(joiners), view_seq, self.id, agreed)
        c.install = inst
        c.accepts = {self.id}
        others = [m for m in survivors if m != self.id and m not in joiners]
        if others:
            self.ep.send(others, Kind.INSTALL, _enc.encode(inst), multicast=True)
        self._accept_install(inst)
        self._maybe_commit()

    def _on_install_ok(self, sender: int, ok: M.InstallOk) -> None:
        c = self.coord
        if c is None or c.install is None or ok.vid != c.vid or sender not in c.members:
            return
        if sender not in c.accepts:
            c.started = self.clock.now()
        c.accepts.add(sender)
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        """Installs once a majority of the current view accepted: a survivor that answered
        a rival's flush first refuses our INSTALL, so two rivals cannot both commit (each
        would need the member they share). Nobody delivers past the flush before this."""
        c = self.coord
        assert c is not None and c.install is not None
        old = set(self.members)
        if self.config.primary_partition and not quorum(c.accepts, old):
            return
        inst = c.install
        self.coord = None
        joiners = inst.joiners
        others = [m for m in c.members if m != self.id and m not in joiners]
        if others:
            self.ep.send(others, Kind.COMMIT, _enc.encode(M.Commit(inst.vid)), multicast=True)
        if joiners:
            self.ep.send(joiners, Kind.JOIN,
                         _enc.encode(M.Install(inst.vid, inst.members, joiners,
                                               inst.view_seq, self.id, [])))
            self.pending_state[inst.vid] = tuple(joiners)
        self._commit_install(inst)

    # -- view change: member side --------------------------------------------------------
    def _on_flush(self, sender: int, f: M.Flush) -> None:
        if self.status == STANDBY or self.id not in f.members:
            return
        key = (f.vid, sender)
        if f.vid <= self.installed_vid or (self.flush_key is not None and key < self.flush_key):
            self.counters["dropped_stale_flush"] += 1
            return
        survivors = set(f.members) - set(f.joiners)
        if sender != max(survivors):
            raise ValueError("flush from a replica that is not the highest survivor")
        if self.coord is not None and key > (self.coord.vid, self.id):
            self.coord = None  # a higher coordinator took over
        self.highest_vid = max(self.highest_vid, f.vid)
        self.flush_key = key
        self.accepted = None  # an install accepted for an older flush: in the report below
        self.early_commit = None
        self.frozen = True
        self.flush_members = frozenset(f.members)
        entries = [M.Entry(e.sender, e.mid, _view_payload(e), e.client, e.req, e.seq, e.tie,
                           e.agreed) for e in self.hold.entries.values()]
        entries.extend(self.log)
        fo = M.FlushOk(f.vid, self.max_seq, self.position, self.status != MEMBER, entries)
        if sender == self.id:
            assert self.coord is not None
            self.coord.replies[self.id] = fo
            self._maybe_install()
        else:
            self.ep.send((sender,), Kind.FLUSH_OK, _enc.encode(fo))

    def _on_install(self, sender: int, inst: M.Install) -> None:
        if (self.flush_key != (inst.vid, sender) or inst.coordinator != sender
                or self.accepted is not None):
            self.counters["dropped_stale_install"] += 1
            return
        self._accept_install(inst)
        self.ep.send((sender,), Kind.INSTALL_OK, _enc.encode(M.InstallOk(inst.vid)))
        if self.early_commit == (inst.vid, sender):
            self._commit_install(inst)

    def _on_commit(self, sender: int, cm: M.Commit) -> None:
        if self.flush_key != (cm.vid, sender):
            self.counters["dropped_stale_install"] += 1
            return
        if self.accepted is None:
            self.early_commit = (cm.vid, sender)  # overtook its INSTALL
            return
        self._commit_install(self.accepted)

    def _accept_install(self, inst: M.Install) -> None:
        """Puts the install's entries and view into the hold-back queue, still frozen: a
        later flush reports them, so a view a majority accepted is never lost."""
        self.accepted = inst
        hold = self.hold
        cut = self.cut
        for e in inst.agreed:
            key = (e.sender, e.mid)
            if (e.seq, e.tie, e.sender, e.mid) <= cut:
                continue  # delivered here already, or part of the snapshot we restored
            if e.sender == VIEW_SENDER:
                if self.view is not None and e.mid <= self.view.view_id:
                    continue
                cur = hold.entries.get(key)
                if cur is None:
                    view = View.of(e.mid, _members_dec.decode(e.payload))
                    hold.add(HoldEntry(VIEW_SENDER, e.mid, b"", -1, -1, e.seq, e.tie, True,
                                       stable=True, view=view))
                continue
            if (0 <= e.pos < self.position) or key in self.delivered_keys:
                continue
            cur = hold.entries.get(key)
            if cur is None:
                hold.add(HoldEntry(e.sender, e.mid, e.payload, e.client, e.req, e.seq, e.tie,
                                   True))
            elif not cur.agreed:
                hold.agree(cur, e.seq, e.tie)
            if e.seq > self.max_seq:
                self.max_seq = e.seq
        members = tuple(sorted(set(inst.members)))
        hold.add(HoldEntry(VIEW_SENDER, inst.vid, b"", -1, -1, inst.view_seq, inst.coordinator,
                           True, stable=True, view=View.of(inst.vid, members)))
        self.max_seq = max(self.max_seq, inst.view_seq)

    def _commit_install(self, inst: M.Install) -> None:
        members = tuple(sorted(set(inst.members)))
        hold = self.hold
        self.accepted = None
        self.early_commit = None
        mset = set(members) - set(inst.joiners)
        for key, e in list(hold.entries.items()):
            if not e.agreed and e.sender != VIEW_SENDER and e.sender not in mset:
                # A departed sender's message that nobody agreed: dropped. So are those of
                # a member recruited again (it forgot them when it was excluded; it re-sends
                # those it still has, as messages of this view).
                hold.remove(key)
        for e in hold.entries.values():
            # Everything agreed now is in the INSTALL every survivor applies: stable.
            if e.agreed:
                e.stable = True
        self.oks = {k: v for k, v in self.oks.items() if k in hold.entries}
        self.max_seq = max(self.max_seq, inst.view_seq)
        self._install_membership(inst.vid, members, inst.joiners)
        self._resume(retarget=True)

    def _install_membership(self, vid: int, members: tuple[int, ...],
                            joiners: list[int]) -> None:
        now = self.clock.now()
        for m in set(self.members) - set(members):
            self.ep.forget(m)
            self.fd.unwatch(m)
            self.joined_at.pop(m, None)
        for j in joiners:
            self.joined_at[j] = vid
        self.members = members
        self.frozen_since.clear()
        self.stateless = set(joiners)
        self.installed_vid = vid
        self.highest_vid = max(self.highest_vid, vid)
        self.fd.watch(members, now)
        for m in members:
            self.fd.heard(m, max(now, self.fd.last.get(m, now)))
        self.frozen = False
        self.flush_key = None
        self.flush_members = frozenset()
        self.counters["views_installed"] += 1

    def _resume(self, retarget: bool = False) -> None:
        """After a view change: re-target pending messages, then process what was held."""
        mset = set(self.members)
        # Recruited again ourselves: the others drop our MSGs of older views; send anew.
        rejoined = retarget and self.id in self.stateless
        for o in list(self.out.values()):
            for m in list(o.proposals):
                if (m not in mset or (retarget and m in self.stateless)
                        or (rejoined and m != self.id)):
                    del o.proposals[m]  # a recruit's proposal predates its snapshot
            if self.id in o.proposals:
                # Propose again, past the view's position: without the departed members'
                # proposals the agreed key could fall below one a departed (excluded, still
                # running) member already delivered a later message at.
                o.proposals[self.id] = self.max_seq = self.max_seq + 1
            new = mset - o.sent_to - {self.id}
            if retarget:
                new |= self.stateless - {self.id}  # recruits hold only what follows the view
            if rejoined:
                new = mset - {self.id}
            if new:
                o.sent_to |= new
                self.ep.send(new, Kind.MSG, _enc.encode(M.Msg(o.mid, o.payload, o.client,
                                                              o.req, self.installed_vid)))
        for o in list(self.out.values()):
            if o.mid in self.out:
                self._maybe_finalize(o)
        queued, self.queued_msgs = self.queued_msgs, []
        for sender, msg in queued:
            if sender in mset and msg.vid >= self.joined_vid:
                if msg.vid > self.installed_vid:
                    self.queued_msgs.append((sender, msg))  # of a view still to come
                else:
                    self._propose(sender, msg)
            else:
                self.counters["dropped_departed"] += 1
        agreed, self.queued_agreed = self.queued_agreed, []
        for sender, a in agreed:
            if sender in mset:
                try:
                    self._on_agreed(sender, a)
                except ValueError:
                    self.counters["dropped_invalid"] += 1
        if self.status == MEMBER:
            subs, self.queued_submits = self.queued_submits, []
            for mid, payload, client, req in subs:
                self._send_msg(mid, payload, client, req)
        self._deliver()

    # -- recruited host side -------------------------------------------------------------
    def _on_join(self, sender: int, inst: M.Install) -> None:
        if self.id not in inst.joiners or inst.vid <= self.installed_vid:
            self.counters["dropped_stale_install"] += 1
            return
        # A member with state may be recruited again when its recruiter died before others
        # learned that it had the state: the new snapshot replaces it.
        self.status = JOINING
        self.joined_vid = inst.vid
        self.transport.subscribe(GROUP)
        self.join_view = (inst.vid, inst.view_seq, inst.coordinator)
        mset = set(inst.members)
        for key, e in list(self.hold.entries.items()):
            if not e.agreed and e.sender not in mset:
                self.hold.remove(key)  # a departed sender's message: dropped by the view
        self.hold.add(HoldEntry(VIEW_SENDER, inst.vid, b"", -1, -1, inst.view_seq,
                                inst.coordinator, True, stable=True,
                                view=View.of(inst.vid, tuple(inst.members))))
        self.max_seq = max(self.max_seq, inst.view_seq)
        self._install_membership(inst.vid, tuple(sorted(set(inst.members))), inst.joiners)
        self._resume(retarget=True)
        early, self.early_state = self.early_state, None
        if early is not None and early.vid == inst.vid:
            self._on_state(sender, early)

    def _on_state(self, sender: int, st: M.State) -> None:
        if st.vid > self.join_view[0] and st.vid > self.installed_vid:
            self.early_state = st  # overtook its JOIN (no FIFO between messages): keep it
            return
        if self.status != JOINING or st.vid != self.join_view[0]:
            self.counters["dropped_stale_state"] += 1
            return
        vid, view_seq, coord = self.join_view
        cut = (view_seq, coord, VIEW_SENDER, vid)
        view_entry = self.hold.entries.get((VIEW_SENDER, vid))
        self.hold.remove((VIEW_SENDER, vid))
        self.cut = cut
        self.machine.restore(st.snapshot)
        for entry in st.log:  # so our flush reports cover what the snapshot contains
            self._remember(entry)
        for key, e in list(self.hold.entries.items()):
            # Ordered before the snapshot: already in it. An unagreed entry below the cut
            # may still be agreed after it (pending at the view change): it stays, and
            # _deliver skips it if its AGREED puts it below the cut after all.
            if key in self.delivered_keys or (e.agreed and (e.seq, e.tie, e.sender, e.mid)
                                              < cut):
                self.hold.remove(key)
        self.position = st.delivered
        self.applied = st.applied
        self.clients = {c: OrderedDict((r, (s, snd, mid)) for r, s, snd, mid in reqs)
                        for c, reqs in st.clients}
        self.client_reqs = sum(len(t) for t in self.clients.values())
        self.status = MEMBER
        self.counters["state_transfers"] += 1
        view = view_entry.view if view_entry is not None else View.of(vid, self.members)
        assert isinstance(view, View)
        self._set_view(view)
        self._resume()

    def _become_standby(self) -> None:
        self.status = STANDBY
        for m in self.members:
            self.ep.forget(m)
        self.members = ()
        self.view = None
        self.hold = HoldBack()
        self.oks.clear()
        self.out.clear()
        lost = list(self.callbacks)
        self.callbacks.clear()
        for cb in self.lost_listeners:
            cb(lost)
        self.queued_msgs.clear()
        self.queued_submits.clear()
        self.queued_agreed.clear()
        self._clear_alarm()
        self.frozen = False
        self.flush_key = None
        self.coord = None
        self.accepted = None
        self.early_commit = None
        self.transport.subscribe(DISCOVERY)
        self.counters["expelled"] += 1


def _rank(e: M.Entry) -> int:
    return 2 if e.pos >= 0 else (1 if e.agreed else 0)


def _view_payload(e: HoldEntry) -> bytes:
    if e.sender == VIEW_SENDER and isinstance(e.view, View):
        return _enc.encode(list(e.view.members))
    return e.payload

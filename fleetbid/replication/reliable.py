"""Reliable unicast and ack-based reliable multicast over an unreliable datagram transport.

A reliable message goes out once (by IP multicast when it has several destinations) and is
retransmitted by unicast, with exponential backoff, to each destination that has not acked it.
Receivers ack in batches (one ACK datagram per peer per loop turn) and suppress duplicates with
the bounded ReplayGuard. Every message has its own timer, so a missing ack delays nothing else.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Callable, Hashable, Iterable

from fleetbid.replication.api import GroupConfig
from fleetbid.replication.clock import Clock, Handle
from fleetbid.replication.fragments import Reassembler, split
from fleetbid.replication.transport import GROUP, Transport
from fleetbid.replication.wire import FLAG_RELIABLE, Codec, Kind, ReplayGuard, WireError

log = logging.getLogger(__name__)

OnMessage = Callable[[int, int, bytes], None]  # sender, kind, body
_ACKS_PER_DATAGRAM = 160


class _Pending:
    __slots__ = ("dests", "frames", "rto", "attempts", "timer", "sent_at")

    def __init__(self, dests: set[int], frames: list[bytes], rto: float, now: float) -> None:
        self.dests = dests
        self.frames = frames
        self.rto = rto
        self.attempts = 1
        self.timer: Handle | None = None
        self.sent_at = now


class _Rtt:
    """Round-trip estimate of one peer (RFC 6298): the retransmission timeout adapts to a
    loaded machine instead of resending what is merely late."""

    __slots__ = ("srtt", "rttvar")

    def __init__(self, sample: float) -> None:
        self.srtt = sample
        self.rttvar = sample / 2

    def update(self, sample: float) -> None:
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
        self.srtt = 0.875 * self.srtt + 0.125 * sample

    def rto(self) -> float:
        return self.srtt + 4 * self.rttvar


class Endpoint:
    def __init__(self, config: GroupConfig, member_id: int, transport: Transport, clock: Clock,
                 incarnation: int, on_message: OnMessage, counters: Counter[str]) -> None:
        self.config = config
        self.id = member_id
        self.transport = transport
        self.clock = clock
        self.incarnation = incarnation
        self.on_message = on_message
        self.counters = counters
        self.codec = Codec(config.group_id, config.key)
        # Ids stay remembered while their sender may still retransmit (all its attempts).
        self.guard = ReplayGuard(config.dedup_window,
                                 horizon_s=config.max_attempts * config.rto_max_s)
        self.reasm = Reassembler(config.max_message)
        self.addresses: dict[int, Hashable] = {}
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._acks: dict[int, list[int]] = {}
        self._ack_timer: Handle | None = None
        self._rtt: dict[int, _Rtt] = {}
        self.closed = False
        transport.set_receiver(self.on_datagram)

    # -- sending -------------------------------------------------------------------------
    def _frames(self, kind: int, flags: int, body: bytes) -> tuple[int, list[bytes]]:
        mid = self._next_id
        self._next_id += 1
        chunks = split(body, self.config.max_datagram)
        n = len(chunks)
        enc = self.codec.encode
        return mid, [enc(kind, flags, self.id, self.incarnation, mid, c, i, n)
                     for i, c in enumerate(chunks)]

    def send(self, dests: Iterable[int], kind: int, body: bytes, *,
             multicast: bool = False) -> int:
        """Sends reliably to `dests` (self excluded); returns the message id."""
        targets = {d for d in dests if d != self.id}
        mid, frames = self._frames(kind, FLAG_RELIABLE, body)
        if not targets or self.closed:
            return mid
        if multicast and len(targets) > 1:
            for f in frames:
                self.transport.multicast(f, GROUP)
            self.counters["sent"] += len(frames)
        else:
            for d in targets:
                self._unicast(d, frames)
        p = _Pending(targets, frames, self._rto_for(targets), self.clock.now())
        self._pending[mid] = p
        p.timer = self.clock.call_later(p.rto, lambda: self._retransmit(mid))
        return mid

    def send_unreliable(self, dest: int | None, kind: int, body: bytes,
                        channel: str = GROUP, addr: Hashable | None = None) -> None:
        """One datagram (or fragments), no ack: to a member, an address, or a channel."""
        if self.closed:
            return
        _, frames = self._frames(kind, 0, body)
        if dest is None and addr is None:
            for f in frames:
                self.transport.multicast(f, channel)
            self.counters["sent"] += len(frames)
        elif addr is not None:
            for f in frames:
                self.transport.send(addr, f)
            self.counters["sent"] += len(frames)
        else:
            self._unicast(dest, frames)  # type: ignore[arg-type]

    def _unicast(self, dest: int, frames: list[bytes]) -> None:
        addr = self.addresses.get(dest)
        if addr is None:
            self.counters["no_route"] += 1
            return
        send = self.transport.send
        for f in frames:
            send(addr, f)
        self.counters["sent"] += len(frames)

    def _rto_for(self, dests: set[int]) -> float:
        rto = self.config.rto_s
        for d in dests:
            est = self._rtt.get(d)
            if est is not None:
                rto = max(rto, est.rto())
        return min(rto, self.config.rto_max_s)

    def _retransmit(self, mid: int) -> None:
        p = self._pending.get(mid)
        if p is None or self.closed:
            return
        if p.attempts >= self.config.max_attempts:
            del self._pending[mid]
            self.counters["gave_up"] += 1
            log.debug("gave up message %d to %s", mid, sorted(p.dests))
            return
        p.attempts += 1
        for d in p.dests:
            self._unicast(d, p.frames)
            self.counters["retransmits"] += 1
        p.rto = min(p.rto * 2, self.config.rto_max_s)
        p.timer = self.clock.call_later(p.rto, lambda: self._retransmit(mid))

    def forget(self, member: int) -> None:
        """Stops retransmitting to a member that left the view."""
        self._rtt.pop(member, None)
        for mid in [m for m, p in self._pending.items() if member in p.dests]:
            p = self._pending[mid]
            p.dests.discard(member)
            if not p.dests:
                self._done(mid, p)

    def _done(self, mid: int, p: _Pending) -> None:
        del self._pending[mid]
        if p.timer is not None:
            p.timer.cancel()

    @property
    def unacked(self) -> int:
        return len(self._pending)

    # -- receiving -----------------------------------------------------------------------
    def on_datagram(self, data: bytes, src: Hashable) -> None:
        if self.closed:
            return
        c = self.counters
        try:
            fr = self.codec.decode(data)
        except WireError as exc:
            c["dropped_" + exc.reason] += 1
            log.debug("dropped datagram from %s: %s", src, exc.reason)
            return
        if fr.sender == self.id:
            return  # our own multicast, looped back
        c["received"] += 1
        reliable = fr.flags & FLAG_RELIABLE
        if fr.frag_count > 1:
            if self.guard.seen(fr.sender, fr.incarnation, fr.msg_id):
                c["dropped_duplicate"] += 1
                if reliable:
                    self._queue_ack(fr.sender, fr.msg_id)
                return
            try:
                body = self.reasm.add((fr.sender, fr.incarnation, fr.msg_id), fr.frag_index,
                                      fr.frag_count, fr.body, self.config.max_datagram)
            except ValueError as exc:
                c["dropped_" + str(exc)] += 1
                return
            if body is None:
                return
        else:
            body = fr.body
        reason = self.guard.check(fr.sender, fr.incarnation, fr.msg_id, self.clock.now())
        if reason is not None:
            c["dropped_" + reason] += 1
            if reason == "duplicate" and reliable:
                self._queue_ack(fr.sender, fr.msg_id)
            return
        self.addresses[fr.sender] = src
        if fr.kind == Kind.ACK:
            self._on_ack(fr.sender, body)
            return
        if reliable:
            self._queue_ack(fr.sender, fr.msg_id)
        self.on_message(fr.sender, fr.kind, body)

    def _on_ack(self, sender: int, body: bytes) -> None:
        if len(body) % 8:
            self.counters["dropped_bad_ack"] += 1
            return
        pending = self._pending
        now = self.clock.now()
        for (mid,) in struct.iter_unpack("!Q", body):
            p = pending.get(mid)
            if p is not None and sender in p.dests:
                if p.attempts == 1:  # Karn: only unambiguous samples
                    est = self._rtt.get(sender)
                    if est is None:
                        self._rtt[sender] = _Rtt(now - p.sent_at)
                    else:
                        est.update(now - p.sent_at)
                p.dests.discard(sender)
                if not p.dests:
                    self._done(mid, p)

    def _queue_ack(self, sender: int, mid: int) -> None:
        lst = self._acks.get(sender)
        if lst is None:
            self._acks[sender] = [mid]
        else:
            lst.append(mid)
        if self._ack_timer is None:
            self._ack_timer = self.clock.call_later(0, self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_timer = None
        acks, self._acks = self._acks, {}
        for dest, ids in acks.items():
            for i in range(0, len(ids), _ACKS_PER_DATAGRAM):
                part = ids[i:i + _ACKS_PER_DATAGRAM]
                self.send_unreliable(dest, Kind.ACK, struct.pack(f"!{len(part)}Q", *part))
                self.counters["acks_sent"] += 1

    def close(self) -> None:
        self.closed = True
        for p in self._pending.values():
            if p.timer is not None:
                p.timer.cancel()
        self._pending.clear()
        if self._ack_timer is not None:
            self._ack_timer.cancel()

"""Datagram format: a fixed header, the body, and an HMAC-SHA256 tag under the deployment key.

Header (big-endian): magic "FBR", version, kind, flags, group-id length, fragment index,
fragment count, sender id (u32), sender incarnation (u64), message id (u64), group id bytes.
The tag covers header and body, so a forged, truncated or garbled datagram fails the check.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import Counter, deque
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"FBR"
VERSION = 1
TAG_LEN = 32
FLAG_RELIABLE = 1  # the receiver must acknowledge the message id
_HDR = struct.Struct("!3sBBBBHHIQQ")
HEADER_LEN = _HDR.size


class Kind(IntEnum):
    ACK = 1
    HEARTBEAT = 2
    MSG = 3  # ISIS: a new message for the total order
    PROPOSE = 4  # ISIS: a member's proposed sequence number
    AGREED = 5  # ISIS: the sender's agreed sequence number
    FLUSH = 6  # view change: coordinator asks survivors to freeze and report
    FLUSH_OK = 7
    INSTALL = 8  # view change: the new view and the fate of pending messages
    JOIN = 9  # view change: sent to recruited members
    STATE = 10  # snapshot for recruited members
    DISCOVER = 11  # recruitment: leader asks standbys over the discovery group
    OFFER = 12  # recruitment: a standby offers itself
    CLIENT_SUBMIT = 13  # open group: a non-member submits through a member
    CLIENT_RESULT = 14
    AGREED_OK = 15  # ISIS: a member holds a message agreed (delivery waits for a majority)
    INSTALL_OK = 16  # view change: a survivor accepted the INSTALL (still frozen)
    COMMIT = 17  # view change: a majority accepted; install it
    ANNOUNCE = 18  # not the protocol's: fleet announcements to monitors (platform/announce.py)


_KINDS = frozenset(int(k) for k in Kind)


class WireError(ValueError):
    """A datagram that must be dropped; `reason` is the counter name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    flags: int
    frag_index: int
    frag_count: int
    sender: int
    incarnation: int
    msg_id: int
    body: bytes


class Codec:
    """Encodes and authenticates datagrams of one group under one key."""

    def __init__(self, group_id: str, key: bytes) -> None:
        self.group = group_id.encode()
        if not 0 < len(self.group) <= 64:
            raise ValueError("group_id must be 1..64 bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self.drops: Counter[str] = Counter()

    def encode(self, kind: int, flags: int, sender: int, incarnation: int, msg_id: int,
               body: bytes, frag_index: int = 0, frag_count: int = 1) -> bytes:
        head = _HDR.pack(MAGIC, VERSION, kind, flags, len(self.group), frag_index, frag_count,
                         sender, incarnation, msg_id) + self.group
        mac = self._mac.copy()
        mac.update(head)
        mac.update(body)
        return b"".join((head, body, mac.digest()))

    def decode(self, data: bytes) -> Frame:
        """Returns the frame or raises WireError (and counts the reason)."""
        try:
            return self._decode(data)
        except WireError as exc:
            self.drops[exc.reason] += 1
            raise

    def _decode(self, data: bytes) -> Frame:
        if len(data) < HEADER_LEN + TAG_LEN:
            raise WireError("truncated")
        (magic, version, kind, flags, glen, fidx, fcnt, sender, inc,
         msg_id) = _HDR.unpack_from(data)
        if magic != MAGIC:
            raise WireError("bad_magic")
        if version != VERSION:
            raise WireError("bad_version")
        end = len(data) - TAG_LEN
        mac = self._mac.copy()
        mac.update(memoryview(data)[:end])
        if not hmac.compare_digest(mac.digest(), data[end:]):
            raise WireError("bad_mac")
        # Checked after the tag: only key holders reach here, but be strict anyway.
        if data[HEADER_LEN:HEADER_LEN + glen] != self.group or HEADER_LEN + glen > end:
            raise WireError("other_group")
        if kind not in _KINDS:
            raise WireError("bad_kind")
        if fcnt == 0 or fidx >= fcnt:
            raise WireError("bad_fragment")
        return Frame(kind, flags, fidx, fcnt, sender, inc, msg_id,
                     data[HEADER_LEN + glen:end])


_MARK = 64  # ids per time mark of the replay filter


class ReplayGuard:
    """Per-sender duplicate and replay filter with bounded memory.

    A sender's datagrams carry (incarnation, message id); ids grow within an incarnation and a
    restarted process has a larger incarnation. Remembers the last `window` ids per sender;
    an id older than every remembered one is rejected as a replay.

    `horizon_s` (> 0): an id is forgotten (the floor raised past it) only once it was seen
    more than `horizon_s` ago, the time a sender may still retransmit an older message that
    was lost. Without it a busy sender (heartbeats, acks and proposals all take ids) pushed
    the floor past a lost message's id within the window, its retransmissions were then
    dropped as replays, never acked nor delivered, and the group waited for it for ever.
    `cap` ids per sender bound the memory whatever the rate (8 x window by default).
    """

    __slots__ = ("window", "_peers", "max_peers", "horizon_s", "cap", "forced")

    def __init__(self, window: int = 8192, max_peers: int = 1024, horizon_s: float = 0.0,
                 cap: int = 0) -> None:
        self.window = window
        self.max_peers = max_peers
        self.horizon_s = horizon_s
        self.cap = cap or 8 * window
        self.forced = 0  # ids forgotten by the cap while still within the horizon
        # sender -> [incarnation, floor, seen set, ids in arrival order, marks]; a mark
        # [n, t, t0] covers the next n ids of the order, seen between t0 and t (one mark per
        # _MARK ids or horizon/16 seconds: a time per id cost 90 bytes more per id).
        self._peers: dict[int, list] = {}

    def check(self, sender: int, incarnation: int, msg_id: int,
              now: float = 0.0) -> str | None:
        """None if new (and records it); else the drop reason."""
        st = self._peers.get(sender)
        if st is None or incarnation > st[0]:
            if st is None and len(self._peers) >= self.max_peers:
                return "too_many_peers"
            st = [incarnation, -1, set(), deque(), deque()]
            self._peers[sender] = st
        elif incarnation < st[0]:
            return "stale_incarnation"
        if msg_id <= st[1]:
            return "replay"
        seen: set[int] = st[2]
        if msg_id in seen:
            return "duplicate"
        seen.add(msg_id)
        order: deque[int] = st[3]
        marks: deque[list] = st[4]
        order.append(msg_id)
        last = marks[-1] if marks else None
        if last is not None and last[0] < _MARK and now - last[2] <= self.horizon_s / 16:
            last[0] += 1
            last[1] = now
        else:
            marks.append([1, now, now])  # [ids, last seen, first seen]
        while len(seen) > self.window:
            recent = now - marks[0][1] < self.horizon_s
            if recent and len(seen) <= self.cap:
                break  # may still be retransmitted: keep the floor below it
            if recent:
                self.forced += 1
            old = order.popleft()
            seen.discard(old)
            marks[0][0] -= 1
            if not marks[0][0]:
                marks.popleft()
            if old > st[1]:
                st[1] = old
        return None

    def seen(self, sender: int, incarnation: int, msg_id: int) -> bool:
        st = self._peers.get(sender)
        return st is not None and st[0] == incarnation and (msg_id <= st[1] or msg_id in st[2])

    def forget(self, sender: int) -> None:
        self._peers.pop(sender, None)

"""The announcement group: a UDP multicast group that monitors listen to, signed like the
replication traffic.

Best-effort on purpose: a monitor may join late or lose a datagram, and no agent waits for
one. Datagrams use the replication library's frame (`replication.wire.Codec`: HMAC-SHA256
under a key of the serve, kind ANNOUNCE) and its replay filter, so a forged, garbled or
replayed datagram is dropped, counted and logged; nothing else reads it.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

from fleetbid.protocol import announce
from fleetbid.replication.transport import UdpTransport
from fleetbid.replication.wire import Codec, Kind, ReplayGuard, WireError

log = logging.getLogger("fleetbid.announce")

CHANNEL = "announce"
GROUP_ID = "fleetbid-announce"


@dataclass(frozen=True)
class AnnounceGroup:
    """Where the fleet announces and the key it signs with (hex): in the serve state file."""

    address: str
    port: int
    key: str
    interface: str = "127.0.0.1"

    @classmethod
    def fresh(cls) -> AnnounceGroup:
        """A group of its own for one serve: concurrent serves ignore each other (other key)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        address = f"239.253.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
        return cls(address, port, secrets.token_hex(32))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AnnounceGroup:
        group = cls(**raw)
        bytes.fromhex(group.key)  # ValueError if not hex
        if not (isinstance(group.port, int) and 0 < group.port < 65536):
            raise ValueError(f"bad announcement port {group.port!r}")
        return group

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def codec(self) -> Codec:
        return Codec(GROUP_ID, bytes.fromhex(self.key))

    def transport(self) -> UdpTransport:
        return UdpTransport(self.interface, {CHANNEL: (self.address, self.port)})


class Announcer:
    """One per process: every agent of the process announces through its one socket."""

    def __init__(self, group: AnnounceGroup, process: int) -> None:
        self.codec = group.codec()
        self.transport = group.transport()
        self.process = process
        self.incarnation = time.time_ns()  # a restarted process is not taken for a replay
        self.next_id = 0
        self.sent = 0

    async def open(self) -> None:
        await self.transport.open()

    def emit(self, news: announce.Announcement) -> None:
        self.next_id += 1
        frame = self.codec.encode(Kind.ANNOUNCE, 0, self.process, self.incarnation,
                                  self.next_id, announce.encode(news))
        self.transport.multicast(frame, CHANNEL)
        self.sent += 1

    def close(self) -> None:
        self.transport.close()


class Listener:
    """Joins the group and hands every authentic announcement to `on_news`."""

    LOG_EVERY = 100  # after the first, log one in this many drops (a flood must not flood logs)

    def __init__(self, group: AnnounceGroup,
                 on_news: Callable[[announce.Announcement], None]) -> None:
        self.codec = group.codec()
        self.transport = group.transport()
        self.on_news = on_news
        self.guard = ReplayGuard()
        self.dropped: Counter[str] = Counter()

    async def open(self) -> None:
        self.transport.set_receiver(self.receive)
        await self.transport.open()
        await self.transport.subscribe_now(CHANNEL)

    def receive(self, data: bytes, addr: Hashable) -> None:
        try:
            frame = self.codec.decode(data)
            if frame.kind != Kind.ANNOUNCE:
                raise WireError("not_announcement")
            replay = self.guard.check(frame.sender, frame.incarnation, frame.msg_id)
            if replay is not None:
                raise WireError(replay)
            news = announce.decode(frame.body)
        except WireError as exc:
            self.drop(exc.reason, addr)
            return
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.drop("bad_body", addr)
            return
        self.on_news(news)

    def drop(self, reason: str, addr: Hashable) -> None:
        self.dropped[reason] += 1
        total = sum(self.dropped.values())
        if total == 1 or total % self.LOG_EVERY == 0:
            log.warning("announcement from %s dropped: %s (%d dropped so far)", addr, reason,
                        total)

    def close(self) -> None:
        self.transport.close()

"""A replicated append-only log: the simplest StateMachine (tests, benchmark, examples)."""

from __future__ import annotations

import hashlib

import msgspec

from fleetbid.replication.api import Delivery, View

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(tuple[list[tuple[int, int, int, bytes]], list[int]])


class LogMachine:
    def __init__(self) -> None:
        self.log: list[tuple[int, int, int, bytes]] = []  # (seq, sender, msg_id, payload)
        self.views: list[View] = []
        self.restored_from: int | None = None  # log length of the snapshot we started from
        self.listeners: list = []  # callables(Delivery): observers (benchmark timing)

    def apply(self, delivery: Delivery) -> None:
        if delivery.seq != len(self.log):
            raise AssertionError(f"gap in the total order: {delivery.seq} != {len(self.log)}")
        self.log.append((delivery.seq, delivery.sender, delivery.msg_id, delivery.payload))
        for cb in self.listeners:
            cb(delivery)

    def on_view(self, view: View) -> None:
        self.views.append(view)

    def snapshot(self) -> bytes:
        return _enc.encode((self.log, [v.view_id for v in self.views]))

    def restore(self, data: bytes) -> None:
        log, _ = _dec.decode(data)
        self.log = [tuple(x) for x in log]  # type: ignore[misc]
        self.restored_from = len(self.log)

    def keys(self) -> list[tuple[int, int]]:
        return [(s, m) for _, s, m, _ in self.log]


class DigestMachine:
    """A state machine of constant size: a rolling hash over every delivery (sha256 chain).

    Two replicas with equal (count, digest) applied the same messages in the same order,
    however long the history; the snapshot is 40 bytes. What the long-run tests and the
    fleet's invariant check compare instead of whole logs.
    """

    def __init__(self) -> None:
        self.count = 0
        self.digest = b"\0" * 32
        self.views = 0

    def apply(self, delivery: Delivery) -> None:
        if delivery.seq != self.count:
            raise AssertionError(f"gap in the total order: {delivery.seq} != {self.count}")
        self.digest = hashlib.sha256(self.digest + _enc.encode(
            (delivery.sender, delivery.msg_id, delivery.payload))).digest()
        self.count += 1

    def on_view(self, view: View) -> None:
        self.views += 1

    def snapshot(self) -> bytes:
        return _enc.encode((self.count, self.digest))

    def restore(self, data: bytes) -> None:
        self.count, self.digest = msgspec.msgpack.decode(data, type=tuple[int, bytes])

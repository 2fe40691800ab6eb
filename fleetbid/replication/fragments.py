"""Splitting messages into datagram-sized fragments and bounded reassembly."""

from __future__ import annotations

from collections import OrderedDict


def split(body: bytes, size: int) -> list[bytes]:
    """Cuts `body` into pieces of at most `size` bytes (one empty piece for an empty body)."""
    if size <= 0:
        raise ValueError("fragment size must be positive")
    if len(body) <= size:
        return [body]
    if (len(body) + size - 1) // size > 0xFFFF:
        raise ValueError("message too large for the fragment count field")
    return [body[i:i + size] for i in range(0, len(body), size)]


class Reassembler:
    """Collects fragments by (sender, incarnation, message id).

    Memory is bounded: at most `max_partial` messages in progress (the oldest is evicted) and
    at most `max_bytes` buffered in all. Fragments survive retransmissions, so a resent
    message fills its gaps instead of starting over.
    """

    def __init__(self, max_message: int, max_partial: int = 64,
                 max_bytes: int = 128 * 1024 * 1024) -> None:
        self.max_message = max_message
        self.max_partial = max_partial
        self.max_bytes = max_bytes
        self._parts: OrderedDict[tuple[int, int, int], list] = OrderedDict()
        self._bytes = 0
        self.evicted = 0

    def add(self, key: tuple[int, int, int], index: int, count: int, chunk: bytes,
            frag_size: int) -> bytes | None:
        """Returns the whole message once every fragment is in; raises ValueError if bad."""
        if count * frag_size > self.max_message + frag_size:
            raise ValueError("message_too_large")
        entry = self._parts.get(key)
        if entry is None:
            while len(self._parts) >= self.max_partial or (
                    self._parts and self._bytes + len(chunk) > self.max_bytes):
                self._evict()
            entry = [count, {}, 0]
            self._parts[key] = entry
        elif entry[0] != count:
            raise ValueError("fragment_count_mismatch")
        chunks: dict[int, bytes] = entry[1]
        if index in chunks:
            return None
        chunks[index] = chunk
        entry[2] += len(chunk)
        self._bytes += len(chunk)
        if len(chunks) < count:
            return None
        del self._parts[key]
        self._bytes -= entry[2]
        return b"".join(chunks[i] for i in range(count))

    def _evict(self) -> None:
        _, entry = self._parts.popitem(last=False)
        self._bytes -= entry[2]
        self.evicted += 1

    def __len__(self) -> int:
        return len(self._parts)

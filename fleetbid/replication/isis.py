"""ISIS total order: the hold-back queue and the sender-side proposal collection.

Every entry has a (seq, tie) key: a tentative one (this member's proposal) until the sender's
agreed one arrives. Agreed keys are never below a member's own tentative key, so a heap with
lazy invalidation keeps the order; the head is delivered once it is agreed and stable (a
majority of the view holds it agreed, see replica.py).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

VIEW_SENDER = -1  # hold-back entries that are view changes use this sender id


@dataclass(slots=True)
class HoldEntry:
    sender: int
    mid: int
    payload: bytes
    client: int
    req: int
    seq: int
    tie: int
    agreed: bool = False
    version: int = 0
    view: object = None  # for view-change entries: the View being installed
    stable: bool = False  # a majority holds it agreed: any later view change keeps it


class HoldBack:
    def __init__(self) -> None:
        self.entries: dict[tuple[int, int], HoldEntry] = {}
        self._heap: list[tuple[int, int, int, int, int]] = []

    def add(self, e: HoldEntry) -> None:
        self.entries[(e.sender, e.mid)] = e
        heapq.heappush(self._heap, (e.seq, e.tie, e.sender, e.mid, e.version))

    def agree(self, e: HoldEntry, seq: int, tie: int) -> None:
        e.seq, e.tie, e.agreed = seq, tie, True
        e.version += 1
        heapq.heappush(self._heap, (seq, tie, e.sender, e.mid, e.version))

    def remove(self, key: tuple[int, int]) -> None:
        self.entries.pop(key, None)  # its heap items become stale and are skipped

    def head(self) -> HoldEntry | None:
        heap, entries = self._heap, self.entries
        while heap:
            seq, tie, sender, mid, version = heap[0]
            e = entries.get((sender, mid))
            if e is None or e.version != version:
                heapq.heappop(heap)
                continue
            return e
        return None

    def pop_deliverable(self) -> HoldEntry | None:
        e = self.head()
        if e is None or not (e.agreed and e.stable):
            return None
        heapq.heappop(self._heap)
        del self.entries[(e.sender, e.mid)]
        return e

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(slots=True)
class Outgoing:
    """A message this member sent, waiting for proposals from the current view."""

    mid: int
    payload: bytes
    client: int
    req: int
    sent_to: set[int]
    proposals: dict[int, int] = field(default_factory=dict)  # member -> proposed seq

    def agreed_key(self) -> tuple[int, int]:
        # Tie-break (seq, proposer id): the same answer at every member.
        return max((s, m) for m, s in self.proposals.items())

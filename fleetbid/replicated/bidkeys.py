"""The bids each replica has ordered, for the end-of-run check `lost_bids` (bounded).

Only the check reads it, but it is replicated state (in the snapshot), so a recruit can be
checked too. It used to be a set of every (conversation, vehicle) of the run: it grew with
every bid for as long as the fleet ran, and so did every snapshot. Now it keeps the last
`capacity` conversations (auctions), evicted oldest first in total order, so every replica
holds the same ones; `evicted` says how many it forgot, and the check skips acknowledged
bids of conversations it can no longer see (docs/replication.md, "Bounded memory").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

BID_CONVERSATIONS_KEPT = 4096  # about an hour of a busy soak (60 auctions a minute)


class BidKeys:
    def __init__(self, capacity: int = BID_CONVERSATIONS_KEPT) -> None:
        self.capacity = capacity
        self.by_conversation: OrderedDict[str, set[str]] = OrderedDict()
        self.evicted = 0

    def add(self, conversation: str, sender: str) -> None:
        senders = self.by_conversation.get(conversation)
        if senders is None:
            senders = self.by_conversation[conversation] = set()
            if len(self.by_conversation) > self.capacity:
                self.by_conversation.popitem(last=False)
                self.evicted += 1
        senders.add(sender)

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_conversation.values())

    def keys(self) -> list[tuple[str, str]]:
        return sorted((c, s) for c, senders in self.by_conversation.items() for s in senders)

    def dump(self) -> dict[str, Any]:
        return {"evicted": self.evicted,
                "conversations": [(c, sorted(s)) for c, s in self.by_conversation.items()]}

    def load(self, state: dict[str, Any]) -> None:
        self.evicted = int(state["evicted"])
        self.by_conversation = OrderedDict((c, set(s)) for c, s in state["conversations"])

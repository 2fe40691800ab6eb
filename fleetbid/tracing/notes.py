"""Notes of a conversation diagram: each round's deadline, and the outcome once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetbid.tracing import labels
from fleetbid.tracing.reader import Message, short

WINNER_TYPES = ("ride-assigned", "auction-closed", "auction-result")


@dataclass(frozen=True)
class Note:
    over: tuple[str, ...]  # one or two participant ids
    text: str
    kind: str  # "deadline", "winner" or "unserved"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class NoteTaker:
    """Walks the steps in order; `after(step)` gives the notes to draw below a step."""

    rounds_seen: set[tuple[str, float]] = field(default_factory=set)
    outcome_told: bool = False

    def after(self, step: Sequence[Message]) -> list[Note]:
        notes = [n for m in step if (n := self._deadline(m)) is not None]
        if not self.outcome_told:
            outcome = self._outcome(step[0])
            if outcome is not None:
                self.outcome_told = True
                notes.append(outcome)
        return notes

    def _deadline(self, msg: Message) -> Note | None:
        """The first call of a round (proxies forward the same deadline: noted once)."""
        body = labels.body_of(msg)
        deadline, rnd = body.get("deadline"), body.get("round")
        if not _number(deadline) or (str(rnd), deadline) in self.rounds_seen:
            return None
        self.rounds_seen.add((str(rnd), deadline))
        head = f"round {labels.field_value(rnd)}: " if rnd is not None else ""
        return Note((msg.record.sender,), f"{head}bids until sim {deadline:.1f} s", "deadline")

    @staticmethod
    def _outcome(msg: Message) -> Note | None:
        rec, body = msg.record, labels.body_of(msg)
        if rec.type == "ride-unserved":
            reason = labels.field_value(body.get("reason", "unserved"))
            return Note((rec.sender,), f"unserved: {reason}", "unserved")
        if rec.type not in WINNER_TYPES:
            return None
        winner = body.get("vehicle") if rec.type == "ride-assigned" else body.get("winner")
        if not isinstance(winner, str) or not winner:
            return None
        text = f"winner {labels.clean(short(winner), labels.MAX_NAME)}"
        if _number(body.get("price")):
            text += f", price {labels.field_value(body['price'])}"
        return Note((rec.sender, winner), text, "winner")

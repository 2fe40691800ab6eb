"""The sequence diagram of one conversation, independent of how it is drawn.

Participants are ordered by role (passenger, main manager, auction managers, proxies,
vehicles, then anything else), so the call-for-bids flow reads left to right. Steps are
arrows (one message, or a folded group of them) and notes (round deadlines, the outcome).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fleetbid.tracing import labels
from fleetbid.tracing.folding import FOLD_MIN, Unit, fold
from fleetbid.tracing.notes import Note, NoteTaker
from fleetbid.tracing.reader import Conversation, Message, short
from fleetbid.tracing.render import conversation_header

ROLE_ORDER = ("passenger", "main-manager", "auction", "proxy", "vehicle")


@dataclass(frozen=True)
class Arrow:
    """One message (`kind` "single"), or a folded fan-out ("out": one sender, several
    receivers) or fan-in ("in": several senders, one receiver)."""

    messages: tuple[Message, ...]  # every message drawn by this arrow, copies included
    bases: tuple[Message, ...]  # the messages without their receive-only copies
    kind: str
    senders: tuple[str, ...]  # participant ids, in diagram order
    receivers: tuple[str, ...]
    label: str
    performative: str
    wall: float  # of the first message
    status: str = "ok"  # single messages: "no-recv" or "recv-only" when one end is missing


Step = Arrow | Note


@dataclass
class Diagram:
    conversation: Conversation
    title: str
    participants: list[str]  # participant ids (JIDs) in display order
    names: dict[str, str]  # participant id -> clean display name
    steps: list[Step]
    messages: list[Message]  # every message drawn, in causal order
    start_wall: float

    def arrows(self) -> list[Arrow]:
        return [s for s in self.steps if isinstance(s, Arrow)]


def _natural(text: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _order_key(jid: str) -> tuple[int, list[object], str]:
    name = short(jid)
    rank = next((i for i, role in enumerate(ROLE_ORDER) if name.startswith(role)),
                len(ROLE_ORDER))
    return rank, _natural(name), jid


def _display_names(jids: Sequence[str]) -> dict[str, str]:
    """Short names (`vehicle-3`) unless two JIDs share one; then the whole JID."""
    shorts = [short(j) for j in jids]
    names = {}
    for jid, name in zip(jids, shorts, strict=True):
        text = name if shorts.count(name) == 1 else jid
        names[jid] = labels.clean(text or "?", labels.MAX_NAME)
    return names


def _arrow(units: Sequence[Unit], order: dict[str, int], names: dict[str, str]) -> Arrow:
    """The arrow of one step: one unit, or a folded fan-out or fan-in of units (a unit is a
    message and its receive-only copies)."""
    bases = [u[0] for u in units]
    every = tuple(m for u in units for m in u)
    copies = len(every) - len(bases)
    rec = bases[0].record
    perf = labels.clean(str(rec.raw.get("performative") or "-"), labels.MAX_VALUE)
    if len(bases) == 1:
        first = bases[0]
        status = "no-recv" if first.recv is None else "recv-only" if first.send is None else "ok"
        text = labels.label(first) + (f" (received ×{len(every)})" if copies else "")
        return Arrow(every, tuple(bases), "single", (rec.sender,), (rec.to,), text, perf,
                     rec.wall, status)
    senders = sorted({m.record.sender for m in bases}, key=order.__getitem__)
    receivers = sorted({m.record.to for m in bases}, key=order.__getitem__)
    kind = "out" if len(senders) == 1 else "in"
    peers = receivers if kind == "out" else senders
    text = labels.folded_label(bases, "→" if kind == "out" else "←",
                               names[peers[0]], names[peers[-1]])
    text += f" (+{copies} copies)" if copies else ""
    return Arrow(every, tuple(bases), kind, tuple(senders), tuple(receivers), text, perf,
                 rec.wall)


def build(conv: Conversation, messages: Sequence[Message] | None = None, *,
          fold_min: int | None = FOLD_MIN) -> Diagram:
    """The diagram of `conv` (or of the subset `messages` of it); `fold_min` None draws
    every message, copies included, as its own arrow."""
    msgs = list(conv.messages if messages is None else messages)
    jids = sorted({j for m in msgs for j in (m.record.sender, m.record.to)}, key=_order_key)
    order = {jid: i for i, jid in enumerate(jids)}
    names = _display_names(jids)
    groups = fold(msgs, fold_min) if fold_min is not None else [[[m]] for m in msgs]
    steps: list[Step] = []
    notes = NoteTaker()
    for group in groups:
        steps.append(_arrow(group, order, names))
        for note in notes.after([unit[0] for unit in group]):
            # A winner outside the drawn messages (e.g. --agent) is noted over the sender.
            over = tuple(dict.fromkeys(p for p in note.over if p in order)) or (jids[0],)
            steps.append(Note(tuple(sorted(over, key=order.__getitem__)), note.text,
                              note.kind))
    start = min((m.wall for m in msgs), default=0.0)
    title = labels.clean(conversation_header(conv), 300)
    return Diagram(conv, title, jids, names, steps, msgs, start)

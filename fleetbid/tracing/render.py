"""Text and JSON output of `fleetbid trace`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from fleetbid.tracing.reader import Conversation, Message, Record, short

MAX_LIST_ITEMS = 6
MAX_TEXT = 120


# --- conversation list --------------------------------------------------------------------------


def conversations_json(convs: Iterable[Conversation]) -> str:
    return json.dumps([c.as_dict() for c in convs], indent=2)


def conversations_text(convs: Sequence[Conversation], files: Sequence[str],
                       records: int, outside: int) -> str:
    header = ("AUCTION", "PASSENGER", "WINNER", "BIDDERS", "MSGS", "WALL ms", "SIM s", "OUTCOME")
    rows = [
        (c.auction_id, short(c.passenger or "") or "-", short(c.winner or "") or "-",
         str(c.bidders), str(len(c.messages)), f"{c.duration_ms:.1f}",
         f"{c.duration_sim_s:.1f}",
         c.outcome + (f" ({c.reason})" if c.outcome == "unserved" and c.reason else ""))
        for c in convs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    right = {3, 4, 5, 6}  # numbers

    def line(cells: Sequence[str]) -> str:
        out = [cell.rjust(w) if i in right else cell.ljust(w)
               for i, (cell, w) in enumerate(zip(cells, widths, strict=False))]
        return "  ".join([*out, cells[-1]]).rstrip()

    lines = [line(header), *(line(r) for r in rows)]
    counts = {k: sum(c.outcome == k for c in convs) for k in ("served", "unserved", "open")}
    lines.append("")
    lines.append(
        f"{len(convs)} conversation{'s' if len(convs) != 1 else ''}: "
        f"{counts['served']} served, {counts['unserved']} unserved, {counts['open']} open; "
        f"{records} records from {len(files)} file{'s' if len(files) != 1 else ''}"
        + (f", {outside} messages outside any auction" if outside else "")
    )
    return "\n".join(lines)


# --- message sequences --------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A body value, short: JIDs by their name, long strings cut, lists abridged."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "@" in value and " " not in value:
            return short(value)
        text = value if len(value) <= MAX_TEXT else value[:MAX_TEXT - 1] + "…"
        return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text
    if isinstance(value, list | tuple):
        items = [value_text(v.get("vehicle", "{…}")) if isinstance(v, dict) else value_text(v)
                 for v in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"+{len(value) - MAX_LIST_ITEMS}")
        return "[" + ",".join(items) + "]"
    if isinstance(value, dict):
        return "{…}"
    return str(value)


def body_fields(body: Any) -> str:
    """The interesting fields of a body, `key=value` (auction_id left out: it is the
    conversation)."""
    if body is None:
        return ""
    if not isinstance(body, dict):
        text = body if isinstance(body, str) else json.dumps(body)
        text = text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
        return "body=" + json.dumps(text, ensure_ascii=False)
    return " ".join(f"{k}={value_text(v)}" for k, v in body.items() if k != "auction_id")


def messages_text(messages: Sequence[Message], *, show_conversation: bool = False) -> str:
    """One line per message: wall ms since the first, simulated s, from → to, performative,
    type, body fields; `[no recv]`/`[recv only]` when only one end was traced."""
    if not messages:
        return ""
    start = min(m.wall for m in messages)
    rows = []
    for msg in messages:
        rec = msg.record
        cells = [f"+{(rec.wall - start) * 1000:.1f} ms", f"sim {rec.sim:.2f}"]
        if show_conversation:
            cells.append(rec.conversation or "-")
        cells += [f"{short(rec.sender) or '?'} → {short(rec.to) or '?'}",
                  str(rec.raw.get("performative") or "-"), rec.type or "-"]
        tail = body_fields(rec.body)
        if msg.recv is None:
            tail = (tail + " [no recv]").strip()
        elif msg.send is None:
            tail = (tail + " [recv only]").strip()
        rows.append((cells, tail))
    n = len(rows[0][0])
    widths = [max(len(cells[i]) for cells, _ in rows) for i in range(n)]
    lines = []
    for cells, tail in rows:
        out = [c.rjust(widths[i]) if i < 2 else c.ljust(widths[i]) for i, c in enumerate(cells)]
        lines.append("  ".join([*out, tail]).rstrip())
    return "\n".join(lines)


def conversation_header(conv: Conversation) -> str:
    outcome = conv.outcome
    if conv.outcome == "served":
        outcome += f", winner {short(conv.winner or '')}"
    elif conv.outcome == "unserved" and conv.reason:
        outcome += f" ({conv.reason})"
    return (f"auction {conv.auction_id}  passenger {short(conv.passenger or '') or '-'}  "
            f"{outcome}; {conv.bidders} bidder{'s' if conv.bidders != 1 else ''}, "
            f"{len(conv.messages)} messages, {conv.duration_ms:.1f} ms wall, "
            f"{conv.duration_sim_s:.1f} s simulated")


def records_jsonl(records: Iterable[Record]) -> str:
    return "\n".join(json.dumps(r.raw, separators=(",", ":"), ensure_ascii=False)
                     for r in records)

"""Short labels for diagram arrows: a message's type and its key fields, made safe to draw.

Trace content is untrusted (agent names, reasons): `clean` turns any text into one line of
characters that XML 1.0 allows. Renderers still escape it for their own syntax.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fleetbid.tracing.reader import Message
from fleetbid.tracing.render import value_text

# The fields worth reading on an arrow, by message type (docs/architecture.md). Deadlines
# are left out: they become notes. Unknown types show their first few fields.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "ride-request": ("source", "destination"),
    "vehicle-available": ("node", "trips"),
    "open-auction": ("pickup", "dropoff", "candidates"),
    "participation": ("candidates",),
    "auction-phase": ("phase",),
    "auction-closed": ("winner",),
    "admission-refused": ("reason",),
    "group-call": ("n", "round", "vehicles"),
    "call-for-bids": ("n", "round"),
    "bid": ("bid", "eta_s", "round"),
    "bid-declined": ("reason", "round"),
    "bid-received": (),
    "group-best": ("vehicle", "bid", "eta_s"),
    "award": ("vehicle", "price"),
    "award-confirmed": ("eta_s",),
    "award-declined": ("reason",),
    "auction-result": ("winner",),
    "lost": (),
    "ride-assigned": ("vehicle", "eta_s", "price"),
    "ride-unserved": ("reason",),
    "picked-up": ("at",),
    "not-understood": ("reason",),
    "refused": ("reason",),
    "dispatch": ("pickup", "dropoff"),
    "dispatch-confirmed": ("eta_s",),
    "dispatch-declined": ("reason",),
    "audit-copy": ("kind",),
}
UNKNOWN_TYPE_FIELDS = 3
MAX_VALUE = 40  # characters of one field value on an arrow
MAX_LABEL = 90  # characters of a whole arrow label
MAX_NAME = 28  # characters of an agent name

# Characters XML 1.0 forbids even escaped (C0 controls but tab/newline/CR, lone
# surrogates, U+FFFE/U+FFFF), plus the line breaks a one-line label must not hold.
_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff\u2028\u2029]")


def clean(text: str, limit: int | None = None) -> str:
    """`text` as one drawable line: unsafe characters become U+FFFD, long text is cut."""
    text = _UNSAFE.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def body_of(msg: Message) -> dict[str, Any]:
    body = msg.record.body
    return body if isinstance(body, dict) else {}


def field_names(msg: Message) -> tuple[str, ...]:
    known = KEY_FIELDS.get(msg.record.type)
    if known is not None:
        return known
    return tuple(k for k in body_of(msg) if k != "auction_id")[:UNKNOWN_TYPE_FIELDS]


def field_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return str(len(value))  # a count reads better on an arrow than a list of names
    return clean(value_text(value), MAX_VALUE)


def fields_text(msg: Message) -> str:
    body = body_of(msg)
    return " ".join(f"{k}={field_value(body[k])}" for k in field_names(msg) if k in body)


def type_text(msg: Message) -> str:
    return clean(msg.record.type or "?", MAX_VALUE)


def label(msg: Message) -> str:
    """`bid bid=0.0054 eta_s=138.8 round=1`."""
    return clean(f"{type_text(msg)} {fields_text(msg)}".strip(), MAX_LABEL)


def folded_fields(messages: Sequence[Message]) -> str:
    """Key fields of a folded group: a value they share, a numeric range, or a sample."""
    parts = []
    for name in field_names(messages[0]):
        values = [body_of(m)[name] for m in messages if name in body_of(m)]
        if not values:
            continue
        texts = list(dict.fromkeys(field_value(v) for v in values))
        if len(texts) == 1:
            parts.append(f"{name}={texts[0]}")
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            parts.append(f"{name}={field_value(min(values))}–{field_value(max(values))}")
        elif len(texts) == 2:
            parts.append(f"{name}={texts[0]}|{texts[1]}")
        else:
            parts.append(f"{name}={texts[0]} (+{len(texts) - 1} more)")
    return " ".join(parts)


def folded_label(messages: Sequence[Message], arrow: str, first: str, last: str) -> str:
    """`call-for-bids ×15 → vehicle-3…vehicle-17 n=15 round=1`."""
    head = f"{type_text(messages[0])} ×{len(messages)} {arrow} {first}…{last}"
    return clean(f"{head} {folded_fields(messages)}".strip(), MAX_LABEL + 30)

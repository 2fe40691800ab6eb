"""The diagram formats of `fleetbid trace --conversation ID --format F`."""

from __future__ import annotations

from collections.abc import Sequence

from fleetbid.tracing import html_page, mermaid, svg
from fleetbid.tracing.diagram import build
from fleetbid.tracing.folding import FOLD_MIN
from fleetbid.tracing.reader import Conversation, Message

FORMATS = ("mermaid", "svg", "html")


def render(fmt: str, conv: Conversation, messages: Sequence[Message], *,
           fold: bool = True) -> str:
    """`messages` of `conv` drawn as `fmt`. Mermaid is never folded: it has one arrow per
    message, and whoever renders it lays it out."""
    if fmt == "mermaid":
        return mermaid.render(build(conv, messages, fold_min=None))
    diagram = build(conv, messages, fold_min=FOLD_MIN if fold else None)
    if fmt == "svg":
        return svg.render(diagram)
    if fmt == "html":
        return html_page.render(diagram)
    raise ValueError(f"unknown diagram format {fmt!r} (one of {', '.join(FORMATS)})")

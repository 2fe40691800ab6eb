"""A conversation as a Mermaid `sequenceDiagram`: one participant per agent, one arrow per
message (Mermaid lays out and scrolls by itself, so nothing is folded here)."""

from __future__ import annotations

import re

from fleetbid.tracing import labels
from fleetbid.tracing.diagram import Arrow, Diagram

# Mermaid gives meaning to ; # % : < > quotes and line breaks; anything but these plain
# characters is written as a Mermaid entity code (#60; for <), so trace text cannot end a
# statement or start a new one.
_PLAIN = re.compile(r"[^A-Za-z0-9 _.,=+\-|()/@×…–]")
ARROWS = {"ok": "->>", "no-recv": "-x", "recv-only": "-->>"}


def text(value: str) -> str:
    return _PLAIN.sub(lambda m: f"#{ord(m.group())};", value)


def render(diagram: Diagram) -> str:
    ids = {jid: f"p{i}" for i, jid in enumerate(diagram.participants)}
    lines = ["sequenceDiagram", f"    title {text(diagram.title)}"]
    lines += [f"    participant {ids[jid]} as {text(diagram.names[jid])}"
              for jid in diagram.participants]
    for step in diagram.steps:
        if isinstance(step, Arrow):
            arrow = ARROWS.get(step.status, "->>")
            for msg in step.messages:  # a folded group still gets one arrow per message
                rec = msg.record
                label = step.label if len(step.messages) == 1 else labels.label(msg)
                lines.append(f"    {ids[rec.sender]}{arrow}{ids[rec.to]}: "
                             f"{text(label)} ({text(step.performative)})")
        else:
            over = ",".join(ids[p] for p in step.over)
            lines.append(f"    Note over {over}: {text(step.text)}")
    return "\n".join(lines) + "\n"

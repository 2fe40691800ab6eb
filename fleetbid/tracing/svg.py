"""A conversation diagram as SVG, laid out and drawn here (no layout engine).

Text is monospace so its width is known without font metrics: labels can be placed on
their arrow and kept inside the picture. Every arrow or folded group has its own row, so
labels never overlap each other; a white backing keeps lifelines from crossing them.
Arrow groups carry `class` and `data-messages` so tests (and scripts) can count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from fleetbid.tracing.diagram import Arrow, Diagram, Note
from fleetbid.tracing.labels import MAX_LABEL, clean

FONT = 12
CHAR_W = 7.25  # advance of DejaVu Sans Mono at 12 px (0.602 em), the widest usual monospace
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
PAD = 10
COL_MIN = 96  # width of a lifeline's column
BOX_H = 28
ROW_H = 34  # an arrow and its label
NOTE_H = 30
HEAD = 8  # arrowhead length
LABEL_INSET = 14  # from the left end of an arrow to its label
SELF_LABEL = 34  # from a lifeline to the label of a message to itself (right of its loop)
TITLE_H = 52
COLORS = {  # by performative: calls, offers, awards, refusals at a glance
    "cfp": "#1f6fb4", "propose": "#2e8b3e", "accept-proposal": "#7b3fb0",
    "reject-proposal": "#b5651d", "refuse": "#c0392b", "failure": "#c0392b",
    "not-understood": "#c0392b", "request": "#c77700",
}
DEFAULT_COLOR = "#555555"
NOTE_FILL = {"winner": "#e3f4df", "unserved": "#fbe3e0", "deadline": "#fff6c8"}


def q(text: str) -> str:
    """Escape for XML text and double-quoted attribute values (cleaned first: XML cannot
    hold some characters at all)."""
    return escape(clean(text), {'"': "&quot;"})


def text_w(text: str) -> float:
    return len(text) * CHAR_W


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass
class Layout:
    x: dict[str, float]  # lifeline x of each participant
    col_w: dict[str, float]
    left: float  # right edge of the time gutter
    width: float
    top: float  # y of the first step


def _layout(diagram: Diagram) -> Layout:
    times = [_time(diagram, s.wall) for s in diagram.arrows()]
    left = PAD + max((text_w(t) for t in times), default=0.0) + PAD
    x: dict[str, float] = {}
    col_w: dict[str, float] = {}
    edge = left
    for jid in diagram.participants:
        w = max(COL_MIN, text_w(diagram.names[jid]) + 2 * PAD)
        x[jid] = edge + w / 2
        col_w[jid] = w
        edge += w
    widest = max([text_w(s.label) for s in diagram.arrows()]
                 + [text_w(s.text) + 2 * PAD for s in diagram.steps if isinstance(s, Note)]
                 + [0.0])
    loops = [x[a.senders[0]] + SELF_LABEL + text_w(a.label) for a in diagram.arrows()
             if a.kind == "single" and a.senders == a.receivers]  # labels right of a loop
    width = max([edge, left + widest + 2 * PAD, PAD + text_w(diagram.title) + PAD, *loops])
    width += PAD
    return Layout(x, col_w, left, width, TITLE_H + BOX_H + 2 * PAD)


def _time(diagram: Diagram, wall: float) -> str:
    return f"+{(wall - diagram.start_wall) * 1000:.1f}"


def _text(x: float, y: float, text: str, anchor: str = "start", weight: str = "normal",
          fill: str = "#111111") -> str:
    attrs = f' text-anchor="{anchor}"' if anchor != "start" else ""
    attrs += f' font-weight="{weight}"' if weight != "normal" else ""
    return f'<text x="{_num(x)}" y="{_num(y)}" fill="{fill}"{attrs}>{q(text)}</text>'


def _label(lay: Layout, centre: float, y: float, text: str) -> list[str]:
    """A label centred on `centre`, kept inside the picture, on a white backing."""
    w = text_w(text)
    x = min(max(centre - w / 2, lay.left + 2), lay.width - PAD - w)
    return [f'<rect x="{_num(x - 2)}" y="{_num(y - FONT + 1)}" width="{_num(w + 4)}" '
            f'height="{FONT + 2}" fill="#ffffff" fill-opacity="0.9"/>', _text(x, y, text)]


def _head(x: float, y: float, pointing: int, color: str, size: float = HEAD) -> str:
    """An arrowhead with its tip at (x, y), pointing right (1) or left (-1)."""
    back = x - pointing * size
    return (f'<path d="M{_num(x)},{_num(y)} L{_num(back)},{_num(y - size / 2)} '
            f'L{_num(back)},{_num(y + size / 2)} Z" fill="{color}"/>')


def _cross(x: float, y: float, color: str) -> str:
    s = 4
    return (f'<path d="M{_num(x - s)},{_num(y - s)} L{_num(x + s)},{_num(y + s)} '
            f'M{_num(x - s)},{_num(y + s)} L{_num(x + s)},{_num(y - s)}" stroke="{color}" '
            'stroke-width="2"/>')


def _line(x1: float, x2: float, y: float, color: str, width: float = 1.5,
          dashed: bool = False) -> str:
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return (f'<line x1="{_num(x1)}" y1="{_num(y)}" x2="{_num(x2)}" y2="{_num(y)}" '
            f'stroke="{color}" stroke-width="{width}"{dash}/>')


def _arrow_shapes(lay: Layout, arrow: Arrow, y: float, color: str) -> list[str]:
    if arrow.kind == "single":
        x1, x2 = lay.x[arrow.senders[0]], lay.x[arrow.receivers[0]]
        dashed = arrow.status != "ok"
        if x1 == x2:  # to itself: a loop to the right of the lifeline
            return [f'<path d="M{_num(x1)},{_num(y - 6)} h28 v12 h-{28 - HEAD}" fill="none" '
                    f'stroke="{color}" stroke-width="1.5"/>', _head(x1, y + 6, -1, color)]
        way = 1 if x2 > x1 else -1
        end = _cross(x2, y, color) if arrow.status == "no-recv" else _head(x2, y, way, color)
        return [_line(x1, x2 - way * HEAD, y, color, dashed=dashed), end]
    # A folded group: one line from the hub to its farthest peers, a mark at every peer.
    out = arrow.kind == "out"
    hub = lay.x[arrow.senders[0] if out else arrow.receivers[0]]
    peers = [lay.x[p] for p in (arrow.receivers if out else arrow.senders)]
    shapes = [_line(min(peers + [hub]), max(peers + [hub]), y, color, width=2.5)]
    for px in peers:
        way = 1 if px > hub else -1
        if out:
            shapes.append(_head(px, y, way, color, HEAD + 2))
        else:
            shapes.append(f'<circle cx="{_num(px)}" cy="{_num(y)}" r="4" fill="{color}"/>')
    if not out:
        for way in {1 if px < hub else -1 for px in peers}:
            shapes.append(_head(hub, y, way, color, HEAD + 2))
    return shapes


def _arrow(diagram: Diagram, lay: Layout, arrow: Arrow, y: float) -> list[str]:
    color = COLORS.get(arrow.performative, DEFAULT_COLOR)
    kind = {"single": "single", "out": "fan-out", "in": "fan-in"}[arrow.kind]
    names = diagram.names
    tip = (f"{arrow.label} ({arrow.performative}) "
           f"{', '.join(names[s] for s in arrow.senders)} → "
           f"{', '.join(names[r] for r in arrow.receivers)}")
    xs = [lay.x[p] for p in arrow.senders + arrow.receivers]
    left, right, w = min(xs), max(xs), text_w(arrow.label)
    if left == right:  # a self-message's label starts right of its loop
        centre = left + SELF_LABEL + w / 2
    elif right - left > w + 2 * LABEL_INSET:
        # A long arrow's label sits at its left end: in a wide picture it stays in view
        # next to the lifeline it starts from, not halfway across the screen.
        centre = left + LABEL_INSET + w / 2
    else:
        centre = (left + right) / 2
    out = [f'<g class="arrow {kind}" data-messages="{len(arrow.messages)}" '
           f'data-type="{q(clean(arrow.messages[0].record.type))}">', f"<title>{q(tip)}</title>"]
    out += _arrow_shapes(lay, arrow, y, color)
    out += _label(lay, centre, y - 8, arrow.label)  # clear of heads and crosses
    out.append(_text(lay.left - PAD, y + 4, _time(diagram, arrow.wall), "end", fill="#777777"))
    out.append("</g>")
    return out


def _note(lay: Layout, note: Note, y: float) -> list[str]:
    xs = [lay.x[p] for p in note.over]
    centre = (min(xs) + max(xs)) / 2
    w = max(max(xs) - min(xs) + 2 * PAD, text_w(note.text) + 2 * LABEL_INSET)
    x = min(max(centre - w / 2, lay.left + 2), lay.width - PAD - w)
    fill = NOTE_FILL.get(note.kind, "#fff6c8")
    return [f'<g class="note {q(note.kind)}">',
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{NOTE_H - 8}" '
            f'rx="3" fill="{fill}" stroke="#b8a24a"/>',
            _text(x + LABEL_INSET, y + 15, note.text), "</g>"]  # at the left, like labels


def _boxes(diagram: Diagram, lay: Layout, y: float, css: str) -> list[str]:
    out = []
    for jid in diagram.participants:
        name, x, w = diagram.names[jid], lay.x[jid], lay.col_w[jid] - PAD
        out += [f'<g class="{css}" data-name="{q(name)}">', f"<title>{q(clean(jid))}</title>",
                f'<rect x="{_num(x - w / 2)}" y="{_num(y)}" width="{_num(w)}" '
                f'height="{BOX_H}" rx="4" fill="#eef3fb" stroke="#4a6fa5"/>',
                _text(x, y + BOX_H / 2 + 4, name, "middle", "bold"), "</g>"]
    return out


def render(diagram: Diagram, *, standalone: bool = True) -> str:
    """The SVG document (`standalone` False: without the XML declaration, for HTML)."""
    lay = _layout(diagram)
    body: list[str] = []
    y = lay.top
    for step in diagram.steps:
        if isinstance(step, Arrow):
            y += ROW_H
            body += _arrow(diagram, lay, step, y - 8)
        else:
            body += _note(lay, step, y + 4)
            y += NOTE_H
    bottom = y + 2 * PAD
    height = bottom + BOX_H + PAD
    box_top = TITLE_H
    lifelines = [f'<line x1="{_num(x)}" y1="{box_top + BOX_H}" x2="{_num(x)}" '
                 f'y2="{_num(bottom)}" stroke="#b0b0b0" stroke-dasharray="4 4"/>'
                 for x in lay.x.values()]
    conv = diagram.conversation
    head = [_text(PAD, 20, f"auction {clean(conv.auction_id, MAX_LABEL)}", weight="bold"),
            _text(PAD, 38, diagram.title, fill="#444444"),
            _text(lay.left - PAD, box_top + BOX_H / 2 + 4, "ms", "end", fill="#777777")]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(lay.width)}" '
        f'height="{_num(height)}" viewBox="0 0 {_num(lay.width)} {_num(height)}" '
        f'font-family="{FONT_FAMILY}" font-size="{FONT}">',
        f"<title>{q(diagram.title)}</title>",
        f'<rect width="{_num(lay.width)}" height="{_num(height)}" fill="#ffffff"/>',
        *head, *lifelines,
        *_boxes(diagram, lay, box_top, "participant"),
        *body,
        *_boxes(diagram, lay, bottom, "participant-foot"),
        "</svg>",
    ]
    decl = '<?xml version="1.0" encoding="UTF-8"?>\n' if standalone else ""
    return decl + "\n".join(parts) + "\n"

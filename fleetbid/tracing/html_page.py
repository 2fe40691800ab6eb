"""A conversation as one self-contained HTML page: the SVG inline, then a table of its
messages. No scripts, fonts, images or links, so it opens offline and leaks nothing."""

from __future__ import annotations

from html import escape

from fleetbid.tracing import labels, svg
from fleetbid.tracing.diagram import Diagram
from fleetbid.tracing.reader import Message, short
from fleetbid.tracing.render import body_fields

CSS = """\
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
p.summary { color: #444; margin: 0 0 1em; }
div.diagram { overflow-x: auto; border: 1px solid #ddd; margin-bottom: 1.5em; }
div.diagram svg { display: block; }
table { border-collapse: collapse; font: 12px/1.35 "DejaVu Sans Mono", Menlo, monospace; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 2px 8px; text-align: left;
         vertical-align: top; }
th { background: #f2f4f8; position: sticky; top: 0; }
td.num, td.agent { white-space: nowrap; }
td.num { text-align: right; }
td.fields { word-break: break-word; max-width: 60em; }
tr.partial td { color: #8a5a00; }
"""
COLUMNS = ("ms", "sim s", "from", "to", "type", "performative", "fields", "traced")


def _cell(text: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<td{cls}>{escape(labels.clean(text))}</td>"


def _row(diagram: Diagram, msg: Message) -> str:
    rec = msg.record
    traced = "send+recv" if msg.send and msg.recv else "send only" if msg.send else "recv only"
    cells = [
        _cell(f"+{(rec.wall - diagram.start_wall) * 1000:.1f}", "num"),
        _cell(f"{rec.sim:.2f}", "num"),
        _cell(diagram.names.get(rec.sender) or short(rec.sender), "agent"),
        _cell(diagram.names.get(rec.to) or short(rec.to), "agent"),
        _cell(rec.type),
        _cell(str(rec.raw.get("performative") or "-")),
        _cell(body_fields(rec.body), "fields"),
        _cell(traced),
    ]
    css = "" if traced == "send+recv" else ' class="partial"'
    return f"<tr{css}>{''.join(cells)}</tr>"


def render(diagram: Diagram, diagram_svg: str | None = None) -> str:
    """The page; `diagram_svg` is the SVG of `diagram` (drawn here if not given)."""
    conv = diagram.conversation
    picture = diagram_svg if diagram_svg is not None else svg.render(diagram, standalone=False)
    picture = picture.removeprefix('<?xml version="1.0" encoding="UTF-8"?>\n')
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = "\n".join(_row(diagram, m) for m in diagram.messages)
    title = escape(f"auction {labels.clean(conv.auction_id, labels.MAX_LABEL)}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{CSS}</style>
</head>
<body>
<h1>{title}</h1>
<p class="summary">{escape(diagram.title)}</p>
<div class="diagram">
{picture}</div>
<table class="messages">
<thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""

"""Foreign text made safe for a log line: control characters escaped, length capped.

Text from messages (reasons, ids, JIDs, bodies) is written by whoever sent the message. Put
into a log as it is, a newline forges log lines, an escape sequence drives the operator's
terminal, and a megabyte string floods the disk; `loggable` prevents all three.
"""

from __future__ import annotations

LOG_TEXT_LIMIT = 200  # characters of foreign text in one log field

# Every C0/C1 control character, DEL, and the Unicode line/paragraph separators.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\",
                 0x2028: "\\u2028", 0x2029: "\\u2029"})


def loggable(text: object, limit: int = LOG_TEXT_LIMIT) -> str:
    """`text` (anything; str() of it) escaped and cut to `limit` characters, with the
    original length noted when cut."""
    raw = text if isinstance(text, str) else str(text)
    cut = raw[:limit]
    out = cut.translate(_ESCAPES)
    if len(raw) > limit:
        out += f"...[{len(raw)} chars]"
    return out

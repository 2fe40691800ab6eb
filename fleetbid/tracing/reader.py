"""Reading `fleetbid run --trace` files: load, merge, match sends to receives, summarize.

A trace holds one JSON record per message an agent sent ("send") or received ("recv"); see
fleetbid/platform/trace.py. A message traced at both ends appears twice. Here records are
paired back into messages, ordered causally (wall time, but a receive never before its send:
in-process delivery records the receive before the send), and grouped into conversations
(one per auction; the conversation id is the passenger's request id).
"""

from __future__ import annotations

import gc
import glob
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

REQUIRED_KEYS = ("wall", "sim", "dir", "process", "from", "to", "performative", "protocol",
                 "conversation", "type", "body")
DIRECTIONS = ("send", "recv")
REQUIRED = frozenset(REQUIRED_KEYS)
NUMBER = (int, float)


class TraceError(Exception):
    """A trace that cannot be read at all (missing or unreadable file)."""


class Record:
    """One line of a trace file (`raw`), with its fields checked and at hand."""

    __slots__ = ("raw", "source", "seq", "wall", "sim", "dir", "sender", "to", "type",
                 "conversation", "body")

    def __init__(self, raw: dict[str, Any], source: str, seq: int) -> None:
        self.raw = raw
        self.source = source  # "path:line"
        self.seq = seq  # position in the merged input, a stable tie-breaker
        self.wall: float = float(raw["wall"])
        self.sim: float = float(raw["sim"])
        self.dir: str = raw["dir"]
        self.sender: str = raw["from"]
        self.to: str = raw["to"]
        self.type: str = raw["type"]
        self.conversation: str = raw["conversation"]
        self.body: Any = raw["body"]

    def match_key(self) -> tuple[str, str, str, str, bytes]:
        """Equal for the send and the receive records of one message."""
        try:
            body = msgspec.json.encode(self.body, order="sorted")
        except (TypeError, ValueError, OverflowError):  # not from a decoded JSON line
            body = repr(self.body).encode()
        return (self.sender, self.to, self.type, self.conversation, body)


class Message:
    """A message: its send record and/or its receive record (at least one of them)."""

    __slots__ = ("send", "recv", "record")

    def __init__(self, send: Record | None, recv: Record | None) -> None:
        self.send = send
        self.recv = recv
        rec = send or recv
        assert rec is not None
        self.record: Record = rec  # the record that stands for the message: send, else recv

    @property
    def wall(self) -> float:
        return self.record.wall

    def records(self) -> list[Record]:
        return [r for r in (self.send, self.recv) if r is not None]


@dataclass
class Conversation:
    """Summary of one auction."""

    auction_id: str
    messages: list[Message] = field(default_factory=list)
    passenger: str | None = None
    winner: str | None = None
    reason: str | None = None
    bidders: int = 0
    outcome: str = "open"
    started_wall: float = 0.0
    duration_ms: float = 0.0
    started_sim: float = 0.0
    duration_sim_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "passenger": self.passenger,
            "winner": self.winner,
            "reason": self.reason,
            "bidders": self.bidders,
            "messages": len(self.messages),
            "duration_ms": round(self.duration_ms, 3),
            "duration_sim_s": round(self.duration_sim_s, 3),
            "outcome": self.outcome,
            "started_wall": self.started_wall,
        }


@dataclass
class Trace:
    """Every record of the input, paired into messages in causal order."""

    files: list[str]
    records: list[Record]  # causal order
    messages: list[Message]  # causal order (by the record that stands for each)

    def conversations(self) -> list[Conversation]:
        """Every auction (conversation id other than ""), by start time."""
        groups: dict[str, list[Message]] = defaultdict(list)
        for msg in self.messages:
            conv = msg.record.conversation
            if conv:
                groups[conv].append(msg)
        convs = [summarize(conv, msgs) for conv, msgs in groups.items()]
        convs.sort(key=lambda c: (c.started_wall, c.auction_id))
        return convs

    def conversation(self, auction_id: str) -> Conversation | None:
        msgs = [m for m in self.messages if m.record.conversation == auction_id]
        return summarize(auction_id, msgs) if msgs else None

    def agents(self) -> set[str]:
        return {jid for r in self.records for jid in (r.sender, r.to) if jid}


# --- loading ----------------------------------------------------------------------------------


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Each FILE plus its per-process siblings FILE.*; duplicates dropped, order kept.

    Raises TraceError if a FILE exists neither by itself nor through siblings.
    """
    out: list[str] = []
    seen: set[str] = set()
    for path in paths:
        found = [path] if os.path.exists(path) else []
        found += sorted(p for p in glob.glob(glob.escape(path) + ".*") if os.path.isfile(p))
        if not found:
            raise TraceError(f"{path}: no such trace file")
        for p in found:
            if os.path.isdir(p):
                raise TraceError(f"{p}: is a directory, not a trace file")
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                out.append(p)
    return out


def _problem(raw: Any) -> str | None:
    """Why a parsed line is not a trace record (None if it is one)."""
    if not isinstance(raw, dict):
        return f"not a JSON object ({type(raw).__name__})"
    if not REQUIRED <= raw.keys():
        missing = [k for k in REQUIRED_KEYS if k not in raw]
        return "missing key" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
    for key in ("wall", "sim"):
        value = raw[key]
        if type(value) not in NUMBER or not math.isfinite(value):
            return f"{key} is not a number"
    if raw["dir"] not in DIRECTIONS:
        return f"dir is {raw['dir']!r}, not 'send' or 'recv'"
    for key in ("from", "to", "type", "conversation"):
        if type(raw[key]) is not str:
            return f"{key} is not a string"
    return None


def load_records(paths: Iterable[str],
                 warn: Callable[[str], None]) -> tuple[list[str], list[Record]]:
    """Read every record of every file; corrupt lines are reported through `warn` and skipped."""
    files = expand_paths(paths)
    records: list[Record] = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for lineno, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        raw = msgspec.json.decode(line)
                    except msgspec.DecodeError as exc:
                        warn(f"{path}:{lineno}: skipped, not JSON ({exc})")
                        continue
                    problem = _problem(raw)
                    if problem:
                        warn(f"{path}:{lineno}: skipped, {problem}")
                        continue
                    records.append(Record(raw, f"{path}:{lineno}", len(records)))
        except OSError as exc:
            raise TraceError(f"{path}: {exc.strerror or exc}") from None
    return files, records


def pair(records: list[Record]) -> list[Message]:
    """Pair each receive with its send (same from, to, type, conversation and body).

    Identical messages (a vehicle announcing itself twice from the same node) pair in wall
    order. Receives with no send (untraced sender) and sends with no receive (untraced or
    lost receiver) become messages of one record.
    """
    sends: dict[tuple[str, str, str, str, bytes], list[Record]] = defaultdict(list)
    recvs: dict[tuple[str, str, str, str, bytes], list[Record]] = defaultdict(list)
    for rec in records:
        (sends if rec.dir == "send" else recvs)[rec.match_key()].append(rec)
    messages: list[Message] = []
    for key in sends.keys() | recvs.keys():
        s, r = sends.get(key, []), recvs.get(key, [])
        if len(s) > 1:
            s.sort(key=lambda rec: (rec.wall, rec.seq))
        if len(r) > 1:
            r.sort(key=lambda rec: (rec.wall, rec.seq))
        for i in range(max(len(s), len(r))):
            messages.append(Message(s[i] if i < len(s) else None, r[i] if i < len(r) else None))
    messages.sort(key=lambda m: (m.record.wall, m.record.seq))
    return messages


def causal_records(messages: Iterable[Message]) -> list[Record]:
    """The records of `messages` by wall time, except that a receive always comes after its
    send (it is placed at its send's time if its own clock reading is earlier)."""
    keyed: list[tuple[float, int, int, Record]] = []
    for msg in messages:
        if msg.send is not None:
            keyed.append((msg.send.wall, 0, msg.send.seq, msg.send))
        if msg.recv is not None:
            at = msg.recv.wall if msg.send is None else max(msg.recv.wall, msg.send.wall)
            keyed.append((at, 1, msg.recv.seq, msg.recv))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def load(paths: Iterable[str], warn: Callable[[str], None]) -> Trace:
    """Read, pair and order every record of `paths` (and their FILE.* siblings)."""
    collecting = gc.isenabled()
    gc.disable()  # millions of small, long-lived objects: collections would only cost time
    try:
        files, records = load_records(paths, warn)
        messages = pair(records)
        return Trace(files, causal_records(messages), messages)
    finally:
        if collecting:
            gc.enable()


# --- conversations ----------------------------------------------------------------------------


def _body(msg: Message) -> dict[str, Any]:
    body = msg.record.body
    return body if isinstance(body, dict) else {}


def summarize(auction_id: str, messages: list[Message]) -> Conversation:
    conv = Conversation(auction_id, list(messages))
    records = [r for m in messages for r in m.records()]
    if records:
        walls = [r.wall for r in records]
        sims = [r.sim for r in records]
        conv.started_wall = min(walls)
        conv.duration_ms = (max(walls) - min(walls)) * 1000.0
        conv.started_sim = min(sims)
        conv.duration_sim_s = max(sims) - min(sims)
    bidders: set[str] = set()
    closed_winner: str | None = None
    closed_unserved = False
    for msg in messages:
        rec, body = msg.record, _body(msg)
        kind = rec.type
        if kind == "bid" and rec.sender:
            bidders.add(rec.sender)
        elif kind == "ride-request" and conv.passenger is None and rec.sender:
            conv.passenger = rec.sender
        elif kind == "open-auction" and isinstance(body.get("passenger"), str):
            conv.passenger = conv.passenger or body["passenger"]
        elif kind == "ride-assigned":
            conv.passenger = conv.passenger or rec.to or None
            if isinstance(body.get("vehicle"), str):
                conv.winner = body["vehicle"]
        elif kind == "ride-unserved":
            conv.passenger = conv.passenger or rec.to or None
            conv.reason = str(body.get("reason", "")) or "unserved"
        elif kind == "auction-closed" and "winner" in body:
            if isinstance(body["winner"], str):
                closed_winner = body["winner"]
            else:
                closed_unserved = True
    conv.bidders = len(bidders)
    if conv.winner is None and closed_winner is not None and conv.reason is None:
        conv.winner = closed_winner  # the passenger's side of the trace is missing
    if conv.winner is not None:
        conv.outcome = "served"
    elif conv.reason is not None or closed_unserved:
        conv.outcome = "unserved"
        conv.reason = conv.reason or "unserved"
    return conv


def short(jid: str) -> str:
    """`vehicle-3@localhost` -> `vehicle-3`."""
    return jid.split("@", 1)[0] if jid else jid


def agent_matcher(agent: str) -> Callable[[str], bool]:
    """A test for JIDs naming `agent` (a bare JID, a full JID, or a short name)."""
    if "@" in agent:
        bare = agent.split("/", 1)[0]
        return lambda jid: jid.split("/", 1)[0] == bare
    return lambda jid: short(jid) == agent


def involving(messages: Iterable[Message], agent: str) -> list[Message]:
    matches = agent_matcher(agent)
    return [m for m in messages if matches(m.record.sender) or matches(m.record.to)]

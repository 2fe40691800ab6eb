"""`fleetbid trace --conversation ID --format mermaid|svg|html`: conversation diagrams.

Traces are written here in the reader's format (one JSON record per send and per receive),
so every expected count below is derived from the messages the test wrote.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fleetbid.cli import main
from fleetbid.tracing import folding, load
from fleetbid.tracing.diagram import Diagram, build
from fleetbid.tracing.svg import CHAR_W

D = "@localhost"
DATA = Path(__file__).parent / "data"
T0 = 2000.0
SVG_NS = "http://www.w3.org/2000/svg"
NS = {"s": SVG_NS}
MERMAID_ARROW = re.compile(r"^    (p\d+)(->>|-x|-->>)(p\d+): (\S+)")


@dataclass
class Msg:
    sender: str
    to: str
    kind: str
    body: dict[str, Any]
    performative: str = "inform"
    ends: str = "both"  # "send", "recv" or "both": which records the trace holds
    copies: int = 0  # more receives of the same message (each replica of a manager)


@dataclass
class Run:
    """The messages of a synthetic run, in send order, by conversation."""

    convs: dict[str, list[Msg]] = field(default_factory=dict)

    def add(self, conv: str, *msgs: Msg) -> None:
        self.convs.setdefault(conv, []).extend(msgs)

    def records(self) -> list[dict[str, Any]]:
        out, t = [], T0
        for conv, msgs in self.convs.items():
            for m in msgs:
                t += 0.001
                body = {"auction_id": conv, **m.body} if conv else m.body
                ends = [("send", t), ("recv", t + 0.0004)]
                ends += [("recv", t + 0.0005 + k * 1e-5) for k in range(m.copies)]
                for direction, wall in ends:
                    if m.ends in (direction, "both") or wall > t + 0.0004:
                        out.append({
                            "wall": wall, "sim": round((wall - T0) * 100, 3), "dir": direction,
                            "process": 0, "from": m.sender + D, "to": m.to + D,
                            "performative": m.performative, "protocol": "fleetbid-auction",
                            "conversation": conv, "type": m.kind, "body": body})
        return out

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(r) + "\n" for r in self.records()))
        return path


def auction(run: Run, conv: str, vehicles: list[str], *, auditor: bool = True,
            rounds: int = 1, passenger: str = "passenger-1", manager: str = "auction-1") -> None:
    """A served auction without proxies: every vehicle is called, all but the last bid (each
    bid copied to the auditor), the last declines, the first wins, the others lose."""
    run.add(conv,
            Msg(passenger, "main-manager", "ride-request", {"source": "1", "destination": "2"},
                "request"),
            Msg("main-manager", manager, "open-auction", {"pickup": "1", "candidates": []},
                "request"))
    for rnd in range(1, rounds + 1):
        run.add(conv, *(Msg(manager, v, "call-for-bids",
                            {"pickup": "1", "n": len(vehicles), "deadline": 50.0 * rnd,
                             "round": rnd}, "cfp") for v in vehicles))
        for i, v in enumerate(vehicles[:-1]):
            run.add(conv, Msg(v, manager, "bid", {"bid": 0.01 + i / 1000, "eta_s": 30.0 + i,
                                                  "round": rnd}, "propose"))
            if auditor:
                run.add(conv, Msg(v, "auditor", "audit-copy", {"kind": "bid"}))
        run.add(conv, Msg(vehicles[-1], manager, "bid-declined",
                          {"reason": "to_pickup", "round": rnd}, "refuse"))
        if rnd < rounds:  # the manager acts between rounds: a new round is a new fan-out
            run.add(conv, Msg(manager, "main-manager", "auction-phase", {"phase": "bidding"}))
    winner = vehicles[0]
    run.add(conv,
            Msg(manager, winner, "award", {"vehicle": winner + D, "price": 0.01},
                "accept-proposal"),
            Msg(winner, manager, "award-confirmed", {"vehicle": winner + D, "eta_s": 30.0}),
            Msg(manager, passenger, "ride-assigned",
                {"vehicle": winner + D, "eta_s": 30.0, "price": 0.01, "bidders": 3}),
            Msg(manager, "main-manager", "auction-closed", {"winner": winner + D},
                ends="send"),
            *(Msg(manager, v, "lost", {}, "reject-proposal") for v in vehicles[1:-1]))


def vehicles(n: int, start: int = 1) -> list[str]:
    return [f"vehicle-{i}" for i in range(start, start + n)]


@pytest.fixture
def run() -> Run:
    r = Run()
    auction(r, "a1", vehicles(6))
    auction(r, "a2", vehicles(3, start=7), passenger="passenger-2", manager="auction-2")
    return r


@pytest.fixture
def trace(tmp_path: Path, run: Run) -> Path:
    return run.write(tmp_path / "T")


def fleetbid_trace(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["trace", *args])
    out, err = capsys.readouterr()
    return code, out, err


def agents_of(msgs: list[Msg]) -> set[str]:
    return {a for m in msgs for a in (m.sender, m.to)}


def svg_arrows(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{{{SVG_NS}}}g") if "arrow" in g.get("class", "").split()]


def svg_participants(root: ET.Element) -> list[str]:
    return [g.get("data-name", "") for g in root.iter(f"{{{SVG_NS}}}g")
            if g.get("class") == "participant"]


def assert_texts_inside(root: ET.Element) -> None:
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    for text in root.iter(f"{{{SVG_NS}}}text"):
        x, y = float(text.get("x", "0")), float(text.get("y", "0"))
        w = len("".join(text.itertext())) * CHAR_W
        left = {"middle": x - w / 2, "end": x - w}.get(text.get("text-anchor", ""), x)
        assert 0 <= left and left + w <= width + 0.5, "".join(text.itertext())
        assert 0 < y <= height


def test_message_to_itself_is_a_loop_with_its_label_inside(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Run()
    run.add("s", Msg("passenger-1", "main-manager", "ride-request", {"source": "1"}),
            Msg("vehicle-1", "vehicle-1", "tick", {k: k * 39 for k in "abc"}))
    code, out, err = fleetbid_trace(capsys, str(run.write(tmp_path / "T")), "-c", "s", "-f",
                                    "svg")
    assert code == 0, err
    root = ET.fromstring(out.encode())
    arrows = svg_arrows(root)
    assert [a.get("data-type") for a in arrows] == ["ride-request", "tick"]
    assert_texts_inside(root)
    lifeline = next(float(t.get("x", "0")) for g in root.iter(f"{{{SVG_NS}}}g")
                    if g.get("data-name") == "vehicle-1" for t in g.iter(f"{{{SVG_NS}}}text"))
    label = next(t for t in arrows[1].iter(f"{{{SVG_NS}}}text") if "tick" in (t.text or ""))
    assert float(label.get("x", "0")) > lifeline + 28  # right of the loop, not over it


# --- SVG --------------------------------------------------------------------------------------


def test_svg_unfolded_has_one_arrow_per_message(
        trace: Path, run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "--format", "svg",
                                    "--no-fold")
    assert code == 0, err
    root = ET.fromstring(out.encode())
    msgs = run.convs["a1"]
    assert sorted(svg_participants(root)) == sorted(agents_of(msgs))
    arrows = svg_arrows(root)
    assert len(arrows) == len(msgs)
    assert all(a.get("data-messages") == "1" for a in arrows)
    assert Counter(a.get("data-type") for a in arrows) == Counter(m.kind for m in msgs)


def test_svg_folds_fan_outs_and_their_answers(
        trace: Path, run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "--format", "svg")
    assert code == 0, err
    root = ET.fromstring(out.encode())
    msgs = run.convs["a1"]
    # Groups of 3 or more messages of one type with one hub: the calls, the bids, their
    # audit copies (interleaved with the bids) and the losers.
    by_type = Counter(m.kind for m in msgs)
    groups = {k: n for k, n in by_type.items()
              if k in ("call-for-bids", "bid", "audit-copy", "lost") and n >= 3}
    assert len(groups) == 4
    arrows = svg_arrows(root)
    counts = [int(a.get("data-messages", "0")) for a in arrows]
    assert sum(counts) == len(msgs)
    assert len(arrows) == len(msgs) - sum(n - 1 for n in groups.values())
    folded = {a.get("data-type"): int(a.get("data-messages", "0")) for a in arrows
              if a.get("data-messages") != "1"}
    assert folded == groups
    kinds = {a.get("data-type"): a.get("class") for a in arrows}
    assert kinds["call-for-bids"] == "arrow fan-out" and kinds["lost"] == "arrow fan-out"
    assert kinds["bid"] == "arrow fan-in" and kinds["audit-copy"] == "arrow fan-in"
    texts = ["".join(t.itertext()) for t in root.iter(f"{{{SVG_NS}}}text")]
    cfps = [m.to for m in msgs if m.kind == "call-for-bids"]
    assert f"call-for-bids ×{len(cfps)} → {cfps[0]}…{cfps[-1]} n={len(cfps)} round=1" in texts
    assert sorted(svg_participants(root)) == sorted(agents_of(msgs))
    # The round's deadline and the winner are noted.
    notes = [g for g in root.iter(f"{{{SVG_NS}}}g") if g.get("class", "").startswith("note")]
    assert [n.get("class") for n in notes] == ["note deadline", "note winner"]
    assert "winner vehicle-1, price 0.01" in texts


def test_each_round_is_its_own_fan_out(tmp_path: Path) -> None:
    run = Run()
    auction(run, "r", vehicles(4), rounds=2, auditor=False)
    trace = load([str(run.write(tmp_path / "T"))], print)
    conv = trace.conversation("r")
    assert conv is not None
    arrows = build(conv).arrows()
    calls = [a for a in arrows if a.messages[0].record.type == "call-for-bids"]
    assert [(a.kind, len(a.messages)) for a in calls] == [("out", 4), ("out", 4)]
    bids = [a for a in arrows if a.messages[0].record.type == "bid"]
    assert [(a.kind, len(a.messages)) for a in bids] == [("in", 3), ("in", 3)]
    # Folded groups are drawn in order: round 1's answers before round 2's calls.
    order = [a.messages[0].record.type for a in arrows]
    assert order.index("bid") < len(order) - 1 - order[::-1].index("call-for-bids")
    assert sum(len(a.messages) for a in arrows) == len(run.convs["r"])


def test_svg_readable_at_20_agents_and_200_messages(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Run()
    fleet, rounds = vehicles(17), 4
    auction(run, "big", fleet, rounds=rounds)
    msgs = run.convs["big"]
    assert len(agents_of(msgs)) >= 20 and len(msgs) >= 200
    trace = run.write(tmp_path / "T")
    for fold in ("--fold", "--no-fold"):
        code, out, err = fleetbid_trace(capsys, str(trace), "-c", "big", "-f", "svg", fold)
        assert code == 0, err
        root = ET.fromstring(out.encode())
        arrows = svg_arrows(root)
        assert sum(int(a.get("data-messages", "0")) for a in arrows) == len(msgs)
        if fold == "--no-fold":
            assert len(arrows) == len(msgs)
        else:  # each round's calls, bids and their audit copies fold, and so do the losers
            n = len(fleet)
            calls, bids, losers = n, n - 1, n - 2
            assert len(arrows) == len(msgs) - rounds * (calls - 1 + 2 * (bids - 1)) \
                - (losers - 1)
        # Every text lies inside the picture, and no two arrow labels share a line.
        assert_texts_inside(root)
        label_rows = []
        for arrow in arrows:
            label_rows += [t.get("y") for t in arrow.iter(f"{{{SVG_NS}}}text")
                           if t.get("text-anchor") is None]
        assert len(label_rows) == len(arrows) == len(set(label_rows))


def assert_drawn_in_order(diagram: Diagram) -> None:
    """Folding moved no message above an earlier message of one of its agents (but the hub
    of its group), and no fan-in holds a message received after its hub's next own action."""
    position = {id(m): i for i, m in enumerate(diagram.messages)}
    latest: dict[str, int] = {}
    arrows = diagram.arrows()
    for arrow in arrows:
        hub = {"out": arrow.senders[0], "in": arrow.receivers[0]}.get(arrow.kind)
        for msg in arrow.bases:
            for agent in (msg.record.sender, msg.record.to):
                if agent != hub:
                    assert position[id(msg)] > latest.get(agent, -1), (agent, msg.record.type)
                    latest[agent] = position[id(msg)]
        if arrow.kind == "in":
            first = position[id(arrow.bases[0])]
            acts = [position[id(a.bases[0])] for a in arrows
                    if a.kind == "single" and a.senders[0] == hub
                    and position[id(a.bases[0])] > first]
            assert all(position[id(m)] < min(acts, default=len(position)) for m in arrow.bases)


def replicated_auction(run: Run, conv: str, fleet: list[str], copies: int) -> None:
    """Like a run with replicated managers: every message to the manager is received
    `copies` more times, each bid is acknowledged as it arrives, one vehicle declines
    midway and the last one bids after the award."""
    on_time, decliner, late = fleet[:-2], fleet[-2], fleet[-1]
    run.add(conv,
            Msg("passenger-1", "main-manager", "ride-request", {"source": "1"}, "request"),
            Msg("main-manager", "auction-1", "open-auction", {"pickup": "1"}, "request",
                copies=copies),
            *(Msg("auction-1", v, "call-for-bids", {"n": len(fleet), "round": 1}, "cfp")
              for v in fleet))
    for i, v in enumerate(on_time):
        run.add(conv, Msg(v, "auction-1", "bid", {"bid": 0.01 + i / 1000, "round": 1},
                          "propose", copies=copies),
                Msg("auction-1", v, "bid-received", {}, "confirm"))
        if i == len(on_time) // 2:
            run.add(conv, Msg(decliner, "auction-1", "bid-declined", {"reason": "busy"},
                              "refuse", copies=copies),
                    Msg("auction-1", decliner, "bid-received", {}, "confirm"))
    winner = on_time[0]
    run.add(conv,
            Msg("auction-1", winner, "award", {"vehicle": winner + D}, "accept-proposal"),
            Msg(late, "auction-1", "bid", {"bid": 0.5, "round": 1}, "propose", copies=copies),
            Msg(winner, "auction-1", "award-confirmed", {"eta_s": 3.0}, copies=copies),
            Msg("auction-1", "passenger-1", "ride-assigned", {"vehicle": winner + D}),
            *(Msg("auction-1", v, "lost", {}, "reject-proposal") for v in on_time[1:]))


def test_replica_copies_and_acknowledgements_fold(tmp_path: Path) -> None:
    run, copies, fleet = Run(), 2, vehicles(9)
    replicated_auction(run, "r", fleet, copies)
    msgs = run.convs["r"]
    conv = load([str(run.write(tmp_path / "T"))], print).conversation("r")
    assert conv is not None and len(conv.messages) == sum(1 + m.copies for m in msgs)
    diagram = build(conv)
    arrows = diagram.arrows()
    assert sum(len(a.messages) for a in arrows) == len(conv.messages)
    assert_drawn_in_order(diagram)
    by_label = {a.label.split(" ")[0]: a for a in arrows if a.kind == "single"}
    assert by_label["open-auction"].label.endswith(f"(received ×{1 + copies})")
    bids = [a for a in arrows if a.bases[0].record.type == "bid"]
    on_time = [m for m in msgs if m.kind == "bid" and m.body["bid"] < 0.5]
    # The bids in time fold into one fan-in, with their copies; the late one stays apart,
    # below the award.
    assert [(a.kind, len(a.bases), len(a.messages)) for a in bids] == [
        ("in", len(on_time), len(on_time) * (1 + copies)), ("single", 1, 1 + copies)]
    assert f"bid ×{len(on_time)} ← " in bids[0].label
    assert f"(+{len(on_time) * copies} copies)" in bids[0].label
    order = [a.bases[0].record.type for a in arrows]
    assert order.index("award") < arrows.index(bids[1])
    acks = [a for a in arrows if a.bases[0].record.type == "bid-received"]
    assert sum(len(a.bases) for a in acks) == sum(m.kind == "bid-received" for m in msgs)
    assert max(len(a.bases) for a in acks) >= len(on_time) // 2  # acknowledgements fold
    assert len(arrows) < len(conv.messages) // 3


def test_folding_never_draws_a_call_above_the_callees_earlier_message(tmp_path: Path) -> None:
    run = Run()
    run.add("c", *(Msg("auction-1", v, "call-for-bids", {"round": 1}, "cfp")
                   for v in vehicles(2)),
            Msg("vehicle-3", "main-manager", "vehicle-available", {"node": "4"}, "subscribe"),
            *(Msg("auction-1", v, "call-for-bids", {"round": 1}, "cfp")
              for v in vehicles(4, start=3)))
    conv = load([str(run.write(tmp_path / "T"))], print).conversation("c")
    assert conv is not None
    diagram = build(conv)
    assert_drawn_in_order(diagram)
    arrows = diagram.arrows()
    available = next(i for i, a in enumerate(arrows) if a.label.startswith("vehicle-avail"))
    call_3 = next(i for i, a in enumerate(arrows)
                  if any(m.record.to == "vehicle-3" + D for m in a.bases))
    assert available < call_3
    assert sum(len(a.bases) for a in arrows) == len(run.convs["c"])


@pytest.mark.parametrize("rounds", [1, 3])
def test_folded_fixtures_are_drawn_in_order(tmp_path: Path, rounds: int) -> None:
    run = Run()
    auction(run, "a", vehicles(12), rounds=rounds)
    conv = load([str(run.write(tmp_path / "T"))], print).conversation("a")
    assert conv is not None
    assert_drawn_in_order(build(conv))


def test_folding_stays_fast_when_every_join_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each vehicle does something of its own just before its call: no call may fold, and
    finding that out must not take one folding pass per call."""
    run = Run()
    for v in vehicles(500):
        run.add("w", Msg(v, "x-" + v, "note-" + v, {}), Msg("auction-1", v, "call-for-bids",
                                                             {"round": 1}, "cfp"))
    conv = load([str(run.write(tmp_path / "T"))], print).conversation("w")
    assert conv is not None
    passes = 0
    group = folding._group

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal passes
        passes += 1
        return group(*args, **kwargs)

    monkeypatch.setattr(folding, "_group", counted)
    diagram = build(conv)
    assert passes <= 3, passes  # one folding pass per refused call took 10 s (500 passes)
    assert len(diagram.arrows()) == len(run.convs["w"])
    assert_drawn_in_order(diagram)


# Conversations of real runs (`fleetbid run --vehicles 20 --requests 3 --trace T`): one with
# replicated managers and no proxies (`--proxies 0 --clusters 1 --radius 4000`, as in
# docs/images/conversation.svg), one with proxies and `--replicas 1`.
REAL = [(DATA / "trace-replicated-r00002.jsonl", "r00002"),
        (DATA / "trace-proxies-r00001.jsonl", "r00001")]


@pytest.mark.parametrize(("path", "conv_id"), REAL, ids=["replicated", "proxies"])
def test_real_conversations(path: Path, conv_id: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    agents = {r[k].split("@")[0] for r in records for k in ("from", "to")}
    conv = load([str(path)], print).conversation(conv_id)
    assert conv is not None
    # A message is a send and its receive; receives beyond the sends of identical messages
    # (replica copies) count by themselves.
    ends: dict[str, Counter[str]] = {}
    for r in records:
        key = json.dumps([r["from"], r["to"], r["type"], r["body"]], sort_keys=True)
        ends.setdefault(key, Counter())[r["dir"]] += 1
    total = sum(max(c["send"], c["recv"]) for c in ends.values())
    assert len(conv.messages) == total
    diagram = build(conv)
    assert_drawn_in_order(diagram)
    for fold in ("--fold", "--no-fold"):
        code, out, err = fleetbid_trace(capsys, str(path), "-c", conv_id, "-f", "svg", fold)
        assert code == 0, err
        root = ET.fromstring(out.encode())
        assert sorted(svg_participants(root)) == sorted(agents)
        arrows = svg_arrows(root)
        assert sum(int(a.get("data-messages", "0")) for a in arrows) == total
        assert len(arrows) == (len(diagram.arrows()) if fold == "--fold" else total)
    code, out, _ = fleetbid_trace(capsys, str(path), "-c", conv_id, "-f", "mermaid")
    assert code == 0 and sum(bool(MERMAID_ARROW.match(x)) for x in out.splitlines()) == total
    code, out, _ = fleetbid_trace(capsys, str(path), "-c", conv_id, "-f", "html")
    parser = Page()
    parser.feed(out)
    assert code == 0 and len(parser.rows) == total


def test_replicated_run_folds_to_a_readable_diagram() -> None:
    path, conv_id = REAL[0]
    conv = load([str(path)], print).conversation(conv_id)
    assert conv is not None
    arrows = build(conv).arrows()
    by_type = Counter(m.record.type for m in conv.messages if m.send is not None)
    folded = {a.bases[0].record.type: len(a.bases) for a in arrows if a.kind != "single"}
    # Every call, every bid and every loser's notice is one arrow group.
    assert folded["call-for-bids"] == by_type["call-for-bids"]
    assert folded["bid"] == by_type["bid"]
    assert folded["lost"] == by_type["lost"]
    assert len(arrows) <= len(conv.messages) / 5


# --- Mermaid ----------------------------------------------------------------------------------


def test_mermaid_one_participant_per_agent_one_arrow_per_message(
        trace: Path, run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "--format", "mermaid")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "sequenceDiagram"
    msgs = run.convs["a1"]
    participants = dict(re.findall(r"^    participant (p\d+) as (.+)$", out, re.M))
    assert sorted(participants.values()) == sorted(agents_of(msgs))
    arrows = [MERMAID_ARROW.match(line) for line in lines]
    found = [(participants[a[1]], participants[a[3]], a[4]) for a in arrows if a]
    assert Counter(found) == Counter((m.sender, m.to, m.kind) for m in msgs)
    # The send with no receive ends in a cross.
    lost = [a for a in arrows if a and a[2] == "-x"]
    assert [a[4] for a in lost] == [m.kind for m in msgs if m.ends == "send"]
    notes = [line for line in lines if line.startswith("    Note over ")]
    assert len(notes) == 2 and "winner vehicle-1" in notes[1]


# --- HTML -------------------------------------------------------------------------------------


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.in_body_rows = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        if tag == "tbody":
            self.in_body_rows = True
        elif tag == "tr" and self.in_body_rows:
            self.rows.append([])
        elif tag == "td":
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None
        elif tag == "tbody":
            self.in_body_rows = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_html_is_self_contained_with_svg_and_message_table(
        trace: Path, run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "a1.html"
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "--format", "html",
                                    "--out", str(out_path))
    assert code == 0 and out == "", err
    page = out_path.read_text(encoding="utf-8")
    msgs = run.convs["a1"]
    parser = Page()
    parser.feed(page)
    assert parser.tags["svg"] == 1
    assert len(parser.rows) == len(msgs)
    assert Counter((r[2], r[3], r[4]) for r in parser.rows) == \
        Counter((m.sender, m.to, m.kind) for m in msgs)
    svg_text = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg_text)
    assert sum(int(a.get("data-messages", "0")) for a in svg_arrows(root)) == len(msgs)
    # Nothing is fetched: no URL but the SVG namespace, no scripts, links or images.
    assert set(re.findall(r"https?://[^\s\"'<>)]*", page)) == {SVG_NS}
    for needle in ("<script", "<link", "<img", "src=", "href=", "url(", "@import"):
        assert needle not in page


# --- untrusted text ---------------------------------------------------------------------------


HOSTILE_VEHICLE = 'vehicle-<b>&"\'\x019'
HOSTILE_REASON = '</text><script>alert("x")</script> & ]]> \x01 done'


@pytest.mark.parametrize("fmt", ["svg", "html", "mermaid"])
def test_hostile_names_and_reasons_are_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    run = Run()
    fleet = ["vehicle-1", "vehicle-2", HOSTILE_VEHICLE]
    auction(run, "h", fleet)
    run.add("h", Msg("auction-1", HOSTILE_VEHICLE, "admission-refused",
                     {"reason": HOSTILE_REASON}, "refuse"),
            Msg("auction-1", "passenger-1", "ride<x>;\n    p0->>p1: injected", {}, "inform"))
    msgs = run.convs["h"]
    trace = run.write(tmp_path / "T")
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "h", "--format", fmt)
    assert code == 0, err
    assert "<script" not in out and "<b>" not in out
    if fmt == "mermaid":
        arrows = [line for line in out.splitlines() if MERMAID_ARROW.match(line)]
        assert len(arrows) == len(msgs)  # the type's line break injected no arrow
        assert "injected" in arrows[-1]
        texts = [re.split(r": | as |title ", line, maxsplit=1)[1]
                 for line in out.splitlines()[1:]]
        plain = "".join(re.sub(r"#\d+;", "", t) for t in texts)
        assert not set("<>;:#\"'&\x01\n%") & set(plain)
        return
    svg_text = out[out.index("<svg"):out.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg_text)  # still well-formed XML
    # XML 1.0 cannot hold a control character even escaped: it is drawn as U+FFFD.
    assert HOSTILE_VEHICLE.replace("\x01", "\ufffd") in svg_participants(root)
    texts = "\n".join("".join(t.itertext()) for t in root.iter(f"{{{SVG_NS}}}text"))
    assert 'reason="</text><script>alert(' in texts
    assert sum(int(a.get("data-messages", "0")) for a in svg_arrows(root)) == len(msgs)


# --- bad input --------------------------------------------------------------------------------


def test_bad_input_is_reported(tmp_path: Path, trace: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(tmp_path / "missing"), "-c", "a1", "-f", "svg")
    assert (code, out) == (2, "") and "missing: no such trace file" in err
    code, out, err = fleetbid_trace(capsys, str(tmp_path), "-c", "a1", "-f", "svg")
    assert (code, out) == (2, "") and "is a directory" in err
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 not a trace\n{\"wall\": 1}\n")
    code, out, err = fleetbid_trace(capsys, str(garbage), "-c", "a1", "-f", "html")
    assert (code, out) == (2, "") and "no trace records" in err and "skipped" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "-f", "svg")
    assert (code, out) == (2, "") and "--format svg needs --conversation" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "-f", "svg", "--json")
    assert (code, out) == (2, "") and "do not go together" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "--out", "x.svg")
    assert (code, out) == (2, "") and "--out needs --format" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "-f", "svg", "--out",
                                    str(tmp_path / "no" / "such" / "dir.svg"))
    assert (code, out) == (2, "") and "cannot write" in err
    # An unknown conversation is "nothing matched" (1), as in the text output.
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "nope", "-f", "mermaid")
    assert (code, out) == (1, "") and "no conversation 'nope'" in err and "2 conversations" in err


def test_unknown_format_is_a_usage_error(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["trace", str(trace), "-c", "a1", "--format", "png"])
    assert exc.value.code == 2
    assert "invalid choice: 'png'" in capsys.readouterr().err


def test_out_writes_the_same_as_stdout(trace: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("mermaid", "svg", "html"):
        _, shown, _ = fleetbid_trace(capsys, str(trace), "-c", "a2", "-f", fmt)
        path = tmp_path / f"a2.{fmt}"
        code, out, _ = fleetbid_trace(capsys, str(trace), "-c", "a2", "-f", fmt, "-o", str(path))
        assert code == 0 and out == "" and path.read_text(encoding="utf-8") == shown


def test_agent_filter_draws_only_that_agents_messages(
        trace: Path, run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "a1", "-a", "vehicle-2",
                                    "-f", "svg")
    assert code == 0, err
    root = ET.fromstring(out.encode())
    mine = [m for m in run.convs["a1"] if "vehicle-2" in (m.sender, m.to)]
    assert sum(int(a.get("data-messages", "0")) for a in svg_arrows(root)) == len(mine)
    assert sorted(svg_participants(root)) == sorted(agents_of(mine))


def test_unserved_auction_is_noted(tmp_path: Path, run: Run,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    run.add("u",
            Msg("passenger-5", "main-manager", "ride-request", {"source": "1"}, "request"),
            Msg("main-manager", "auction-3", "open-auction", {"pickup": "1"}, "request"),
            Msg("auction-3", "main-manager", "auction-phase", {"phase": "waiting"}),
            Msg("auction-3", "passenger-5", "ride-unserved", {"reason": "no eligible vehicle"},
                "failure"),
            Msg("auction-3", "main-manager", "auction-closed", {"winner": None}))
    trace = run.write(tmp_path / "T")
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "u", "-f", "svg")
    assert code == 0, err
    root = ET.fromstring(out.encode())
    notes = [g for g in root.iter(f"{{{SVG_NS}}}g") if g.get("class", "").startswith("note")]
    assert [n.get("class") for n in notes] == ["note unserved"]
    assert "unserved: \"no eligible vehicle\"" in "".join(notes[0].itertext())
    assert len(svg_arrows(root)) == len(run.convs["u"])
    # An agent of the run that has no message in this conversation: nothing to draw.
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "u", "-a", "vehicle-1", "-f",
                                    "svg")
    assert (code, out) == (1, "") and "'vehicle-1' has no message in conversation 'u'" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "-c", "u", "-a", "nobody", "-f", "svg")
    assert (code, out) == (1, "") and "no agent 'nobody'" in err

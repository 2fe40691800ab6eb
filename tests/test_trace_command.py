"""`fleetbid trace`: reading the message trace of `fleetbid run --trace FILE`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleetbid.cli import main

D = "@localhost"
T0 = 1000.0
# Agents of process 0 (passengers, vehicles); the others (managers, auctioneers) are process 1.
PROCESS_0 = ("passenger-", "vehicle-")


def process_of(jid: str) -> int:
    return 0 if jid.startswith(PROCESS_0) else 1


def record(wall: float, direction: str, sender: str, to: str, kind: str, conv: str,
           body: Any, performative: str = "inform") -> dict[str, Any]:
    sender, to = sender + D, to + D
    return {
        "wall": wall, "sim": round((wall - T0) * 400 + 100, 3), "dir": direction,
        "process": process_of(sender if direction == "send" else to),
        "from": sender, "to": to, "performative": performative,
        "protocol": "fleetbid-auction", "conversation": conv, "type": kind, "body": body,
    }


def message(send: float | None, recv: float | None, sender: str, to: str, kind: str,
            conv: str, body: Any, performative: str = "inform") -> list[dict[str, Any]]:
    if isinstance(body, dict) and conv:
        body = {"auction_id": conv, **body}
    out = []
    if send is not None:
        out.append(record(send, "send", sender, to, kind, conv, body, performative))
    if recv is not None:
        out.append(record(recv, "recv", sender, to, kind, conv, body, performative))
    return out


def synthetic() -> list[dict[str, Any]]:
    t = T0
    recs: list[dict[str, Any]] = []
    # Outside any auction: vehicle-1 announces itself twice, identically.
    recs += message(t - 1.0, t - 0.99, "vehicle-1", "main-manager", "vehicle-available", "",
                    {"node": "7", "trips": 0}, "subscribe")
    recs += message(t - 0.8, t - 0.79, "vehicle-1", "main-manager", "vehicle-available", "",
                    {"node": "7", "trips": 0}, "subscribe")
    # a2: unserved, starts first.
    recs += message(t - 0.5, t - 0.499, "passenger-a2", "main-manager", "ride-request", "a2",
                    {"source": "1", "destination": "2", "requested_at": 5.0}, "request")
    recs += message(t - 0.3, t - 0.299, "auction-0", "passenger-a2", "ride-unserved", "a2",
                    {"reason": "no eligible vehicle"}, "failure")
    # a1: served by vehicle-2, two bidders, eleven messages.
    recs += message(t, t + 0.001, "passenger-a1", "main-manager", "ride-request", "a1",
                    {"source": "3", "destination": "4", "requested_at": 10.0}, "request")
    recs += message(t + 0.002, t + 0.003, "main-manager", "auction-1", "open-auction", "a1",
                    {"passenger": "passenger-a1" + D, "pickup": "3", "dropoff": "4",
                     "cluster": 0, "requested_at": 10.0, "candidates": []}, "request")
    for i, v in enumerate(("vehicle-1", "vehicle-2")):
        recs += message(t + 0.004 + i * 1e-4, t + 0.005 + i * 1e-4, "auction-1", v,
                        "call-for-bids", "a1", {"pickup": "3", "n": 2, "deadline": 99.0},
                        "cfp")
    # The receive of vehicle-1's bid has an EARLIER wall time than its send.
    recs += message(t + 0.010, t + 0.008, "vehicle-1", "auction-1", "bid", "a1",
                    {"bid": 0.0123, "eta_s": 34.5}, "propose")
    recs += message(t + 0.011, t + 0.012, "vehicle-2", "auction-1", "bid", "a1",
                    {"bid": 0.02, "eta_s": 20.0}, "propose")
    # From an untraced vehicle: only the receive is in the trace.
    recs += message(None, t + 0.013, "vehicle-3", "auction-1", "bid-declined", "a1",
                    {"reason": "busy"}, "refuse")
    recs += message(t + 0.020, t + 0.021, "auction-1", "vehicle-2", "award", "a1",
                    {"vehicle": "vehicle-2" + D, "passenger": "passenger-a1" + D,
                     "pickup": "3", "dropoff": "4", "price": 0.0123}, "accept-proposal")
    recs += message(t + 0.022, t + 0.023, "vehicle-2", "auction-1", "award-confirmed", "a1",
                    {"vehicle": "vehicle-2" + D, "eta_s": 20.0, "trips": 0})
    recs += message(t + 0.030, t + 0.031, "auction-1", "passenger-a1", "ride-assigned", "a1",
                    {"vehicle": "vehicle-2" + D, "eta_s": 20.0, "price": 0.0123,
                     "bidders": 2})
    # Its receive is missing (lost, or untraced receiver).
    recs += message(t + 0.032, None, "auction-1", "main-manager", "auction-closed", "a1",
                    {"winner": "vehicle-2" + D, "winner_trips": 0})
    # a3: still open.
    recs += message(t + 1.0, None, "passenger-a3", "main-manager", "ride-request", "a3",
                    {"source": "5", "destination": "6", "requested_at": 500.0}, "request")
    return recs


A1_TYPES = ["ride-request", "open-auction", "call-for-bids", "call-for-bids", "bid", "bid",
            "bid-declined", "award", "award-confirmed", "ride-assigned", "auction-closed"]


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """The synthetic run as two per-process files, T and T.1, each with corrupt lines."""
    recs = synthetic()
    by_process: dict[int, list[str]] = {0: [], 1: []}
    for r in sorted(recs, key=lambda r: r["wall"]):
        by_process[r["process"]].append(json.dumps(r))
    by_process[0].insert(2, "this is not json")  # T line 3
    by_process[1].insert(1, "[1, 2]")  # T.1 line 2
    by_process[1].insert(3, json.dumps({"wall": 1.0, "dir": "send"}))  # T.1 line 4
    path = tmp_path / "T"
    path.write_text("\n".join(by_process[0]) + "\n")
    (tmp_path / "T.1").write_text("\n".join(by_process[1]) + "\n")
    return path


def fleetbid_trace(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["trace", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_merges_sibling_files_and_skips_corrupt_lines(
        trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(trace))
    assert code == 0
    assert f"{trace}:3: skipped, not JSON" in err
    assert f"{trace}.1:2: skipped, not a JSON object" in err
    assert f"{trace}.1:4: skipped, missing keys" in err
    rows = [line.split() for line in out.splitlines()[1:4]]
    assert [r[0] for r in rows] == ["a2", "a1", "a3"]  # by start time
    a2, a1, a3 = rows
    assert a1[:5] == ["a1", "passenger-a1", "vehicle-2", "2", "11"]
    assert a1[-1] == "served"
    assert a2[2] == "-" and a2[7:] == ["unserved", "(no", "eligible", "vehicle)"]
    assert a3[2] == "-" and a3[-1] == "open"
    assert "3 conversations: 1 served, 1 unserved, 1 open" in out
    assert "2 messages outside any auction" in out


def test_list_json(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fleetbid_trace(capsys, str(trace), "--json")
    assert code == 0
    convs = json.loads(out)
    assert [c["auction_id"] for c in convs] == ["a2", "a1", "a3"]
    assert set(convs[0]) == {"auction_id", "passenger", "winner", "reason", "bidders",
                             "messages", "duration_ms", "duration_sim_s", "outcome",
                             "started_wall"}
    a2, a1, a3 = convs
    assert a1["passenger"] == "passenger-a1@localhost"
    assert a1["winner"] == "vehicle-2@localhost" and a1["reason"] is None
    assert a1["outcome"] == "served"
    assert a1["bidders"] == 2  # vehicle-3 declined
    assert a1["messages"] == 11  # sends, plus the receive with no send
    assert a1["duration_ms"] == pytest.approx(32.0, abs=1e-3)
    assert a1["duration_sim_s"] == pytest.approx(12.8, abs=1e-2)
    assert a1["started_wall"] == pytest.approx(T0)
    assert a2["winner"] is None and a2["reason"] == "no eligible vehicle"
    assert a2["outcome"] == "unserved" and a2["messages"] == 2 and a2["bidders"] == 0
    assert a3["outcome"] == "open" and a3["messages"] == 1
    assert a3["passenger"] == "passenger-a3@localhost"


def test_several_file_arguments_read_like_siblings(
        trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, merged, _ = fleetbid_trace(capsys, str(trace), "--json")
    _, listed, _ = fleetbid_trace(capsys, str(trace), f"{trace}.1", "--json")
    assert json.loads(listed) == json.loads(merged)
    # Only the process-1 file: receives with no traced send still count as messages.
    only = trace.parent / "P1"
    only.write_text((trace.parent / "T.1").read_text())
    _, out, _ = fleetbid_trace(capsys, str(only), "--json")
    a1 = next(c for c in json.loads(out) if c["auction_id"] == "a1")
    # 6 sends of the managers (one of them also received there) + 5 receives from process 0
    assert a1["messages"] == 11 and a1["bidders"] == 2


def test_conversation_text_in_causal_order(
        trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fleetbid_trace(capsys, str(trace), "--conversation", "a1")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.startswith("auction a1  passenger passenger-a1  served, winner vehicle-2")
    assert len(lines) == 11
    assert [line.split()[8] for line in lines] == A1_TYPES
    first = lines[0].split()
    assert first[:7] == ["+0.0", "ms", "sim", "100.00", "passenger-a1", "→", "main-manager"]
    bid = lines[4]
    assert bid.split()[:7] == ["+10.0", "ms", "sim", "104.00", "vehicle-1", "→", "auction-1"]
    assert bid.split()[7:] == ["propose", "bid", "bid=0.0123", "eta_s=34.5"]
    assert "auction_id" not in out
    assert "n=2" in lines[2] and "reason=busy [recv only]" in lines[6]
    assert "vehicle=vehicle-2" in lines[7] and lines[10].endswith("[no recv]")


def test_conversation_json_never_prints_a_recv_before_its_send(
        trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fleetbid_trace(capsys, str(trace), "-c", "a1", "--json")
    assert code == 0
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 20  # 9 messages with both ends, one recv only, one send only
    assert all(r["conversation"] == "a1" for r in recs)
    bid = [(r["dir"], r["wall"]) for r in recs
           if r["type"] == "bid" and r["from"] == "vehicle-1@localhost"]
    assert bid == [("send", T0 + 0.010), ("recv", T0 + 0.008)]  # recv wall is earlier
    positions = {(r["type"], r["from"], r["to"], r["dir"]): i for i, r in enumerate(recs)}
    for (kind, sender, to, direction), i in positions.items():
        if direction == "recv" and (kind, sender, to, "send") in positions:
            assert positions[(kind, sender, to, "send")] < i
    walls = [r["wall"] for r in recs if r["dir"] == "send"]
    assert walls == sorted(walls)


def test_agent_filter(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fleetbid_trace(capsys, str(trace), "-c", "a1", "--agent", "vehicle-1")
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "agent vehicle-1: 2 messages"
    assert [line.split()[8] for line in lines[2:]] == ["call-for-bids", "bid"]
    # Without --conversation: the agent's whole run, conversation column included.
    code, out, _ = fleetbid_trace(capsys, str(trace), "--agent", "vehicle-1@localhost")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "agent vehicle-1@localhost: 4 messages in 1 conversation"
    assert [(line.split()[4], line.split()[9]) for line in lines[1:]] == [
        ("-", "vehicle-available"), ("-", "vehicle-available"), ("a1", "call-for-bids"),
        ("a1", "bid")]
    code, out, _ = fleetbid_trace(capsys, str(trace), "--agent", "auction-1", "--json")
    recs = [json.loads(line) for line in out.splitlines()]
    assert recs and all("auction-1@localhost" in (r["from"], r["to"]) for r in recs)
    assert len(recs) == 20 - 2  # everything of a1 but the passenger's request


def test_bad_input(tmp_path: Path, trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = fleetbid_trace(capsys, str(tmp_path / "missing.jsonl"))
    assert code == 2 and out == ""
    assert "missing.jsonl: no such trace file" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "--conversation", "nope")
    assert code == 1 and out == ""
    assert "no conversation 'nope'" in err and "3 conversations" in err
    code, out, err = fleetbid_trace(capsys, str(trace), "--agent", "vehicle-99")
    assert code == 1 and "no agent 'vehicle-99'" in err
    empty = tmp_path / "empty"
    empty.write_text("")
    code, out, err = fleetbid_trace(capsys, str(empty), "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.e2e
def test_trace_of_a_real_run(tmp_path: Path) -> None:
    path = tmp_path / "T"

    def fleetbid(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleetbid.cli", *args],
                              capture_output=True, text=True, timeout=180)

    done = fleetbid("run", "--vehicles", "10", "--requests", "3", "--rate", "30",
                    "--speed", "400", "--json", "--trace", str(path))
    assert done.returncode == 0, done.stderr
    read = fleetbid("trace", str(path), "--json")
    assert read.returncode == 0, read.stderr
    assert "warning" not in read.stderr
    summary = json.loads(done.stdout)
    convs = json.loads(read.stdout)
    assert len(convs) == 3
    # With the default seed one passenger's cluster has no idle vehicle before its deadline:
    # the trace must tell the same story as the run's own summary.
    served = [c for c in convs if c["outcome"] == "served"]
    unserved = [c for c in convs if c["outcome"] == "unserved"]
    assert len(served) == summary["served"] >= 1
    assert len(unserved) == summary["rejected"]
    for conv in served:
        assert conv["winner"].startswith("vehicle-"), conv
        assert conv["bidders"] >= 1
        assert conv["messages"] >= 6
    for conv in unserved:
        assert conv["winner"] is None and conv["reason"] in summary["rejections"]
    shown = fleetbid("trace", str(path), "--conversation", served[0]["auction_id"])
    assert shown.returncode == 0, shown.stderr
    assert "ride-assigned" in shown.stdout and "bid" in shown.stdout

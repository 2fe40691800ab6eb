"""Joining with a join string, and a crashed node's vehicles leaving the MainManager's pool
(docs/hosts.md), on loopback: one `fleetbid serve` with join slots and a trace, nodes
started with `fleetbid node --join fleetbid://...`.

The scenario, run once: a node with a wrong token is refused; a node with a good token
takes slots 0..1; requests are served, some by its vehicles; the node's process group is
SIGKILLed while requests run (a host crash); once the MainManager has noticed, no auction
calls the dead vehicles; the same vehicles started again (`--join STATE`) serve again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

DEADLINE_S = 180.0
DEAD = ("vehicle-1@localhost", "vehicle-2@localhost")  # the node's slots 0 and 1
CALLS = ("call-for-bids", "award")  # messages that call a vehicle


@dataclass
class Run:
    workdir: Path
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    outcomes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.workdir / "serve.json"

    @property
    def trace(self) -> Path:
        return self.workdir / "trace.jsonl"

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def start(self, name: str, *args: str) -> subprocess.Popen[str]:
        out = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen([sys.executable, "-m", "fleetbid", *args], text=True,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def fleetbid(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleetbid", *args], capture_output=True,
                              text=True, timeout=DEADLINE_S)

    def wait_for(self, name: str, ready: Callable[[], bool]) -> None:
        """Until `ready()` holds; fails at once if the process exits, or at the deadline."""
        deadline = time.monotonic() + DEADLINE_S
        while not ready():
            proc = self.procs[name]
            assert proc.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            assert time.monotonic() < deadline, f"{name}: not ready:\n{self.log(name)[-3000:]}"
            time.sleep(0.1)

    def token(self) -> str:
        done = self.fleetbid("join-token", "--state", str(self.state))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def requests(self, count: int, seed: int, interval: float = 5.0) -> list[dict[str, Any]]:
        done = self.fleetbid("request", "--state", str(self.state), "--random", str(count),
                             "--seed", str(seed), "--interval", f"{interval:g}", "--json")
        assert done.stdout.strip(), done.stderr[-3000:]
        return list(json.loads(done.stdout)["outcomes"])


def records(run: Run) -> list[dict[str, Any]]:
    text = run.trace.read_text() if run.trace.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def idle(run: Run, vehicle: str) -> bool:
    """The vehicle's last word is an announcement, after its last confirmed award (what
    serve's agents received: a node does not trace)."""
    said = [r["type"] for r in records(run) if r["dir"] == "recv" and r["from"] == vehicle
            and r["type"] in ("vehicle-available", "award-confirmed")]
    return bool(said) and said[-1] == "vehicle-available"


def auctions_opened(run: Run) -> int:
    return sum(1 for r in records(run) if r["type"] == "open-auction" and r["dir"] == "send")


def liveness_seen(run: Run) -> bool:
    log = run.log("serve")
    return all(f"{v}'s session ended" in log for v in DEAD)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    r = Run(Path(tmp_path_factory.mktemp("hostjoin")))
    try:
        r.start("serve", "serve", "--state", str(r.state), "--vehicles", "1",
                "--join-slots", "4", "--clusters", "1", "--radius", "100000",
                "--trace", str(r.trace))
        r.wait_for("serve", r.state.exists)
        good = r.token()
        wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
        refused = r.fleetbid("node", "--join", wrong, "--vehicles", "2")
        r.facts["refused"] = (refused.returncode, refused.stderr)
        r.start("node", "node", "--join", good, "--vehicles", "2")
        r.wait_for("node", lambda: "joined the fleet" in r.log("node"))
        replay = r.fleetbid("node", "--join", good, "--vehicles", "1")
        r.facts["replay"] = (replay.returncode, replay.stderr)
        r.outcomes["joined"] = r.requests(4, seed=1, interval=1.0)
        # A host crash while requests run: SIGKILL the node's whole process group, its
        # vehicles idle (so the old registry would keep them in its pool), the first
        # auction of the next requests open (it may have called them).
        r.wait_for("serve", lambda: all(idle(r, v) for v in DEAD))
        opened = auctions_opened(r)
        client = subprocess.Popen(
            [sys.executable, "-m", "fleetbid", "request", "--state", str(r.state),
             "--random", "6", "--seed", "2", "--interval", "20", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        r.wait_for("serve", lambda: auctions_opened(r) > opened)
        os.killpg(r.procs["node"].pid, signal.SIGKILL)
        r.procs["node"].wait(timeout=30)
        out, _ = client.communicate(timeout=DEADLINE_S)
        r.outcomes["crash"] = list(json.loads(out)["outcomes"])
        r.wait_for("serve", lambda: liveness_seen(r))
        r.facts["detected_at"] = time.time()  # the MainManager noticed before this
        r.outcomes["after"] = r.requests(4, seed=3, interval=1.0)
        # The same vehicles come back (the operator restarts them from the state file).
        r.start("back", "node", "--join", str(r.state), "--first-slot", "0",
                "--vehicles", "2")
        r.wait_for("back", lambda: "joined the fleet" in r.log("back"))
        r.outcomes["back"] = r.requests(4, seed=4, interval=1.0)
        yield r
    finally:
        for proc in r.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in r.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def served_by(outcomes: list[dict[str, Any]]) -> set[str]:
    return {o["vehicle"] for o in outcomes if o["served"]}


def test_a_wrong_token_is_refused_with_the_reason_and_takes_no_slot(run: Run) -> None:
    code, err = run.facts["refused"]
    assert code == 1 and "join refused: wrong join token" in err, err
    assert "join refused to" in run.log("serve")
    # The refused attempt changed nothing: the good token's node got the first slots.
    assert "gave this node 2 join slots from 0" in run.log("node")


def test_a_used_token_cannot_join_again(run: Run) -> None:
    code, err = run.facts["replay"]
    assert code == 1 and "already used" in err, err


def test_a_node_joined_with_a_token_serves_rides(run: Run) -> None:
    joined = run.outcomes["joined"]
    assert all(o["served"] for o in joined), joined
    assert served_by(joined) & set(DEAD), joined


def test_every_request_ends_and_no_passenger_gets_two_vehicles(run: Run) -> None:
    for name, outcomes in run.outcomes.items():
        for o in outcomes:
            assert o["served"] or o["reason"], (name, o)
            assert o["assignments"] <= 1, (name, o)


def test_no_auction_after_the_crash_is_noticed_calls_a_dead_vehicle(run: Run) -> None:
    # They were idle when their sessions ended: without liveness they would stay "idle".
    assert "out of the idle pool" in run.log("serve")
    detected = run.facts["detected_at"]
    after = records(run)
    opened_after = {r["conversation"] for r in after
                    if r["type"] == "open-auction" and r["dir"] == "send"
                    and r["wall"] > detected}
    assert len(opened_after) >= 8, opened_after  # the "after" and "back" requests
    # Before the dead vehicles came back: from detection to the restart's first announce.
    back = min(r["wall"] for r in after if r["type"] == "vehicle-available"
               and r["from"] in DEAD and r["wall"] > detected)
    calls = [r for r in after if r["dir"] == "send" and r["type"] in CALLS
             and r["to"] in DEAD and detected < r["wall"] < back]
    offered = [r for r in after if r["dir"] == "send" and detected < r["wall"] < back
               and r["type"] in ("open-auction", "participation")
               and {c["vehicle"] for c in r["body"]["candidates"]} & set(DEAD)]
    assert not calls and not offered, (calls, offered)
    assert any(o["served"] for o in run.outcomes["after"]), run.outcomes["after"]


def test_a_vehicle_that_comes_back_rejoins_the_pool(run: Run) -> None:
    back = run.outcomes["back"]
    assert served_by(back) & set(DEAD), back

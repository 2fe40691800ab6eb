"""`fleetbid serve` and `fleetbid request`: script parsing, the state file, and a real serve
(subprocess, embedded XMPP server, real agents) joined by real request processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.maps import load_map
from fleetbid.platform.xmpp_server import XmppEndpoint, free_port
from fleetbid.run.population import vehicle_start_nodes
from fleetbid.service.script import Place, load_rides, parse_csv, parse_jsonl
from fleetbid.service.serve import AlreadyServing, clear_stale, serve_lock
from fleetbid.service.state import (
    NoRunningFleet,
    ServeState,
    load_running,
    read_state,
    stale_reason,
    write_state,
)

ROADMAP = load_map(None, 0)
STARTS = vehicle_start_nodes(ROADMAP, 10, 0)  # where `serve --vehicles 10` puts its vehicles


def point(node: str) -> str:
    lon, lat = ROADMAP.lonlat(node)
    return f"{lat:.7f},{lon:.7f}"


# --- script parsing ---------------------------------------------------------------------------


def test_csv_rows_points_nodes_ids_comments() -> None:
    rows, bad = parse_csv('# a comment\n\nat,from,to,id\n0,"48.85,2.35",12,r1\n5.5,3,4,\n')
    assert bad == []
    assert [(r.line, r.at, r.id) for r in rows] == [(4, 0.0, "r1"), (5, 5.5, None)]
    assert rows[0].source == Place(lat=48.85, lon=2.35) and rows[0].destination == Place("12")


def test_csv_bad_rows_are_reported_with_their_line_numbers() -> None:
    text = ("at,from,to\n1,2,3\nsoon,2,3\n1,48.85,2.35,3\n-1,2,3\n2,\"48.8,x\",3\n"
            "3,,4\n4,5,6\n")
    rows, bad = parse_csv(text)
    assert [r.line for r in rows] == [2, 8]
    assert [b.line for b in bad] == [3, 4, 5, 6, 7]
    assert "soon" in bad[0].reason and "fields" in bad[1].reason


def test_csv_without_a_header_is_unusable() -> None:
    from fleetbid.service.script import ScriptError

    with pytest.raises(ScriptError, match="header"):
        parse_csv("0,1,2\n")


def test_jsonl_rows_and_bad_rows() -> None:
    text = "\n".join([
        '{"at": 0, "from": "48.85,2.35", "to": 7, "id": "a"}',
        '{"at": 1, "from": [48.86, 2.36], "to": "9"}',
        "not json",
        '{"at": 2, "from": "1"}',
        '["at", 1]',
        '{"at": 3, "from": "1", "to": "2", "colour": "red"}',
        '{"at": 4, "from": "1", "to": "2", "id": "has space"}',
    ])
    rows, bad = parse_jsonl(text)
    assert [(r.line, r.destination.node) for r in rows] == [(1, "7"), (2, "9")]
    assert rows[1].source == Place(lat=48.86, lon=2.36)
    assert [b.line for b in bad] == [3, 4, 5, 6, 7]


def test_resolving_reports_off_map_points_and_unknown_nodes(tmp_path: Path) -> None:
    script = tmp_path / "s.csv"
    script.write_text(f'at,from,to\n0,"{point(STARTS[0])}",{STARTS[1]}\n'
                      f'1,"10.0,10.0",{STARTS[1]}\n2,{STARTS[0]},nowhere\n')
    rides, bad = load_rides(script, ROADMAP)
    assert [(r.line, r.source, r.destination) for r in rides] == [(2, STARTS[0], STARTS[1])]
    assert [b.line for b in bad] == [3, 4]
    assert "off the map" in bad[0].reason and "unknown node" in bad[1].reason


@pytest.mark.parametrize("name", ["rush_hour.csv", "busy_cluster.jsonl", "bad_rows.csv"])
def test_examples_parse_on_the_builtin_map(name: str) -> None:
    rides, bad = load_rides(Path(__file__).parents[1] / "examples" / name, ROADMAP)
    if name == "bad_rows.csv":
        assert rides and bad
    else:
        assert len(rides) >= 15 and bad == []


# --- state file --------------------------------------------------------------------------------


def a_state(pid: int, port: int) -> ServeState:
    endpoint = XmppEndpoint("127.0.0.1", port, "localhost", embedded=True)
    directory = Directory("main-manager@localhost", ("auction-0@localhost",), (),
                          frozenset({"vehicle-0@localhost"}))
    return ServeState.describe(RunConfig(vehicles=1), endpoint, directory, 1.0, "m", pid=pid)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_state_round_trip_and_staleness(tmp_path: Path) -> None:
    path = tmp_path / "s" / "serve.json"
    write_state(path, a_state(os.getpid(), free_port()))
    state = read_state(path)
    assert state.directory().vehicles == frozenset({"vehicle-0@localhost"})
    assert state.run_config() == RunConfig(vehicles=1)
    assert "accepts" in (stale_reason(state) or "")  # our pid lives, nobody listens
    write_state(path, a_state(dead_pid(), free_port()))
    with pytest.raises(NoRunningFleet, match="stale state file.*is gone"):
        load_running(path)
    path.write_text('{"version": 1, "pid": "x"}')
    with pytest.raises(NoRunningFleet, match="not a valid serve state"):
        load_running(path)


def test_one_serve_per_state_file_and_stale_files_are_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "serve.json"
    write_state(path, a_state(dead_pid(), free_port()))
    with serve_lock(path):
        with pytest.raises(AlreadyServing), serve_lock(path):
            pass
        clear_stale(path)
    assert not path.exists()
    assert "replacing stale state file" in capsys.readouterr().err


# --- a real serve ------------------------------------------------------------------------------


def fleetbid(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleetbid.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        kids = {p for p, pp in parents.items() if pp == parent}
        found |= kids
        todo.extend(kids)
    return found


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # an unreaped zombie has exited


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, Path]]:
    cwd = tmp_path_factory.mktemp("serve")
    # stderr to a file: worker processes inherit it, and an unread pipe could fill up.
    log = (cwd / "serve.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbid.cli", "serve", "--vehicles", "10", "--speed", "300",
         "--state", "tmp/serve.json"],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, text=True,
    )
    log.close()
    state = cwd / "tmp" / "serve.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve did not start: {(cwd / 'serve.err').read_text()}")
        time.sleep(0.2)
    yield proc, cwd
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.e2e
def test_request_by_node_prints_one_json_outcome(served: tuple[subprocess.Popen, Path]) -> None:
    _, cwd = served
    done = fleetbid("request", "--state", "tmp/serve.json", "--from-node", STARTS[0],
                    "--to-node", STARTS[9], "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["served"] is True
    assert outcome["source"] == STARTS[0] and outcome["destination"] == STARTS[9]
    assert outcome["vehicle"].endswith("@localhost")
    n, eta = outcome["bidders"], outcome["eta_s"]
    assert outcome["price"] == pytest.approx((n - 1) / n / max(eta, 1.0), rel=1e-9)
    assert outcome["auction_id"] == outcome["request_id"]


@pytest.mark.e2e
def test_request_by_point_snaps_to_road_nodes(served: tuple[subprocess.Popen, Path]) -> None:
    _, cwd = served
    done = fleetbid("request", "--state", "tmp/serve.json", "--from", point(STARTS[1]),
                    "--to", point(STARTS[8]), cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{STARTS[1]} -> {STARTS[8]}: served by vehicle-")
    assert "ETA" in done.stdout and "price" in done.stdout and "auction req-" in done.stdout


@pytest.mark.e2e
def test_script_skips_the_bad_row_and_serves_the_others(
    served: tuple[subprocess.Popen, Path]
) -> None:
    _, cwd = served
    script = cwd / "script.csv"
    script.write_text(f"at,from,to,id\n0,{STARTS[2]},{STARTS[7]},a\n"
                      f'30,"{point(STARTS[3])}",{STARTS[6]},b\n'
                      f"40,{STARTS[4]},no-such-node,c\n60,{STARTS[5]},{STARTS[9]},d\n")
    done = fleetbid("request", "--state", "tmp/serve.json", "--script", str(script), cwd=cwd)
    assert "line 4: unknown node: node 'no-such-node' is not on map" in done.stderr
    lines = done.stdout.splitlines()
    for line, name in ((2, "a"), (3, "b"), (5, "d")):
        assert any(f"line {line} [{name}]: served by" in out for out in lines), done.stdout
    assert "served 3, rejected 0, skipped 1" in done.stdout
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
def test_serve_shuts_down_cleanly_and_a_second_is_refused(
    served: tuple[subprocess.Popen, Path]
) -> None:
    proc, cwd = served
    second = fleetbid("serve", "--vehicles", "10", "--state", "tmp/serve.json", cwd=cwd)
    assert second.returncode != 0
    assert "already running" in second.stderr

    children = descendants(proc.pid)
    assert children  # workers and the embedded server
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    err = (cwd / "serve.err").read_text()
    assert proc.returncode == 0, err
    assert "listening on XMPP 127.0.0.1:" in err and "stopped" in err
    assert not (cwd / "tmp" / "serve.json").exists()
    deadline = time.monotonic() + 5
    while any(running(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)  # multiprocessing's resource tracker leaves on its own, just after
    assert not [p for p in children if running(p)]

    gone = fleetbid("request", "--state", "tmp/serve.json", "--from-node", "1",
                    "--to-node", "2", cwd=cwd)
    assert gone.returncode == 2
    assert "no running fleet: start one with `fleetbid serve`" in gone.stderr


@pytest.mark.e2e
def test_request_without_a_state_file_exits_2(tmp_path: Path) -> None:
    done = fleetbid("request", "--from-node", "1", "--to-node", "2", cwd=tmp_path)
    assert done.returncode == 2
    assert "no running fleet: start one with `fleetbid serve`" in done.stderr

"""Health of a served fleet (issue 15, findings 2 and 3), without processes: what the
launcher concludes from process exits and the replica hosts' group-status events, the
status file `fleetbid status` and `fleetbid request` read, and the new options' checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleetbid.cli import build_parser
from fleetbid.run.health import NO_QUORUM, Health
from fleetbid.service import status as st
from fleetbid.service.state import NoRunningFleet

# Process 0, 1: agents; 2..5: replica hosts (member 0 the standby), as `make_plan` lays out.
HOSTS = {2: (0, True), 3: (1, False), 4: (2, False), 5: (3, False)}


def fleet_health() -> Health:
    return Health(3, dict(HOSTS), server_pid=10,
                  worker_pids={i: 100 + i for i in range(6)})


def test_replica_hosts_may_die_until_the_majority_is_gone() -> None:
    health = fleet_health()
    health.on_exit(5)
    health.on_exit(4)
    assert not health.quorum_lost and not health.fatal  # the standby stepped in
    health.on_exit(3)
    assert health.quorum_lost == f"{NO_QUORUM}: 1 of 3 replica hosts alive"
    snap = health.snapshot()
    assert snap["ok"] is False and snap["replicas"]["quorum"] is False
    assert snap["replicas"]["live_hosts"] == 1 and snap["replicas"]["host_exits"] == 3
    assert not health.fatal  # the fleet stays up and says why it refuses


def test_a_members_watchdog_verdict_counts_too_and_clears() -> None:
    health = fleet_health()
    health.on_group_status(1, True, "quorum lost: 1 of 3 members reachable")
    assert health.quorum_lost.startswith(NO_QUORUM)
    health.on_group_status(1, False, "")
    assert not health.quorum_lost
    health.on_group_status(1, True, "view change stuck")  # frozen, but not for a quorum
    assert not health.quorum_lost


def test_a_dead_worker_or_server_is_fatal() -> None:
    health = fleet_health()
    health.on_exit(1)
    assert health.fatal == "worker process 1 (pid 101) exited"
    health = fleet_health()
    health.on_server_exit(-9)
    assert health.fatal == "the embedded XMPP server (pid 10) exited with code -9"
    assert health.snapshot()["server"] == {"pid": 10, "alive": False, "exit_code": -9}


def test_unreplicated_managers_have_no_quorum_to_lose() -> None:
    health = Health(1, {})
    assert health.quorum_reason() == ""
    assert health.snapshot()["replicas"]["hosts"] == []


def test_served_per_minute_keeps_a_dead_hosts_counts() -> None:
    health = fleet_health()
    health.on_counters({3: (10, 1), 0: (0, 2)}, queue=4, now=0.0)
    health.on_counters({3: (40, 1), 0: (0, 2)}, queue=0, now=30.0)
    assert health.served_per_min(now=30.0) == pytest.approx(60.0)
    health.on_exit(3)
    health.on_counters({4: (5, 0), 0: (0, 2)}, queue=0, now=60.0)  # the new leader
    snap = health.snapshot()
    assert snap["served"] == 45 and snap["unserved"] == 3 and snap["queue"] == 0


# --- the status file --------------------------------------------------------------------------
def test_status_file_sits_beside_the_state_file() -> None:
    assert st.status_path(Path(".fleetbid/serve.json")) == Path(".fleetbid/serve.status.json")
    assert st.status_path(Path("x/mine")) == Path("x/mine.status.json")


def write_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot: dict,
                  age_s: float = 0.0) -> Path:
    state = tmp_path / "serve.json"
    state.write_text("{}")
    monkeypatch.setattr(st, "load_running", lambda path: None)  # a live serve, for reading
    st.write_status(st.status_path(state), snapshot)
    if age_s:
        doc = json.loads(st.status_path(state).read_text())
        doc["updated"] -= age_s
        st.status_path(state).write_text(json.dumps(doc))
    return state


def test_a_lost_quorum_refuses_new_requests_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = fleet_health()
    state = write_serving(tmp_path, monkeypatch, health.snapshot())
    assert st.refusal(state) == ""
    for index in (3, 4, 5):
        health.on_exit(index)
    state = write_serving(tmp_path, monkeypatch, health.snapshot())
    assert st.refusal(state) == f"{NO_QUORUM}: 1 of 3 replica hosts alive"
    text = st.format_status(st.read_status(state))
    assert "DEGRADED" in text and "quorum NO (no quorum: 1 of 3 replica hosts alive)" in text


def test_a_status_file_that_stopped_moving_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = write_serving(tmp_path, monkeypatch, fleet_health().snapshot(),
                          age_s=st.STALE_AFTER_S + 5)
    status = st.read_status(state)
    assert status["ok"] is False and "has not updated" in status["fatal"]


def test_status_without_a_serve_is_no_running_fleet(tmp_path: Path) -> None:
    with pytest.raises(NoRunningFleet):
        st.read_status(tmp_path / "serve.json")


def test_status_is_removed_only_by_its_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.status.json"
    st.write_status(path, {})
    st.remove_status(path, os.getpid() + 1)
    assert path.exists()
    st.remove_status(path, os.getpid())
    assert not path.exists()


# --- options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["soak", "--minutes", "0"], ["soak", "--minutes", "nan"], ["soak", "--flood-per-s", "-1"],
    ["soak", "--replica-kills", "-1"], ["serve", "--max-requests-per-minute", "0"],
    ["run", "--max-requests-per-minute", "1.5"],
])
def test_bad_values_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_soak_accepts_fractional_minutes() -> None:
    args = build_parser().parse_args(["soak", "--minutes", "0.3"])
    assert args.minutes == 0.3 and args.max_requests_per_minute == 10

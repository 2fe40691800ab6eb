"""The `fleetbid run` command as a user runs it: a real process, a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetbid.platform.xmpp_server import EmbeddedXmppServer

KEYS = {
    "requests", "served", "rejected", "wait_avg_s", "wait_p95_s", "wait_max_s",
    "deadhead_ratio", "latency_p50_ms", "latency_p99_ms", "messages", "xmpp_messages",
    "processes", "vehicles", "proxies",
    "replicas", "failovers", "failover_ms_max", "invariant_violations",
}
SMALL = ["--vehicles", "12", "--requests", "4", "--rate", "20", "--speed", "400",
         "--auction-managers", "4"]


def fleetbid(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleetbid.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.e2e
def test_run_json_prints_one_summary_object_on_stdout(tmp_path: Path) -> None:
    done = fleetbid("run", *SMALL, "--json", "--plots", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # alone on stdout: progress and logs went to stderr
    assert KEYS <= set(summary)
    assert summary["requests"] == 4
    assert summary["served"] + summary["rejected"] == 4
    assert summary["xmpp_messages"] > 0  # two processes: protocol messages crossed
    assert summary["messages"] >= summary["xmpp_messages"]
    # --plots: the two histograms, real PNG files
    assert sorted(Path(p).name for p in summary["plots"]) == ["latency.png", "waits.png"]
    for path in summary["plots"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_run_kill_leader_after_reports_the_failover_and_no_violation() -> None:
    done = fleetbid("run", *SMALL, "--json", "--replicas", "3", "--kill-leader-after", "1",
                    "--clusters", "1", "--radius", "100000")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["replicas"] == 3
    assert summary["failovers"] == 1
    assert 0 < summary["failover_ms_max"] < 1000
    assert summary["invariant_violations"] == 0, summary["invariants"]
    assert summary["served"] == summary["requests"] == 4


@pytest.mark.e2e
def test_run_kill_main_serves_every_request_after_the_main_managers_failover() -> None:
    done = fleetbid("run", *SMALL, "--json", "--replicas", "3", "--kill-leader-after", "1",
                    "--kill", "main", "--clusters", "1", "--radius", "100000")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["failovers"] >= 1
    assert summary["invariant_violations"] == 0, summary["invariants"]
    assert summary["served"] == summary["requests"] == 4


@pytest.mark.e2e
def test_run_against_an_existing_server(tmp_path: Path) -> None:
    # Open registration: it stands in for an external server, where anyone may register.
    with EmbeddedXmppServer(tmp_path / "server", open_registration=True) as server:
        ep = server.endpoint
        done = fleetbid("run", *SMALL, "--json", "--xmpp", f"{ep.host}:{ep.port}",
                        "--domain", ep.domain)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["served"] >= 1
        # Fresh names and passwords per run: a second run on the same server works too.
        again = fleetbid("run", *SMALL, "--json", "--xmpp", f"{ep.host}:{ep.port}",
                         "--domain", ep.domain)
        assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--map", "/nonexistent/city.graphml"], "not found"),
    (["--vehicles", "0"], "--vehicles"),
    (["--proxies", "many"], "--proxies"),
    (["--speed", "-1"], "--speed"),
    (["--xmpp", "localhost"], "HOST:PORT"),
    (["--replicas", "0"], "--replicas"),
    (["--replicas", "1", "--kill-leader-after", "3"], "--kill-leader-after needs"),
    (["--kill", "proxy"], "--kill"),
    (["--policy", "batch-auction", "--batch-k", "65"], "--batch-k"),
])
@pytest.mark.e2e
def test_bad_options_get_a_clear_error(args: list[str], needle: str) -> None:
    done = fleetbid("run", *args, "--requests", "1", timeout=60)
    assert done.returncode == 2
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_a_file_that_is_not_a_map(tmp_path: Path) -> None:
    bad = tmp_path / "city.graphml"
    bad.write_text("this is not xml")
    done = fleetbid("run", "--map", str(bad), "--requests", "1", timeout=60)
    assert done.returncode == 2
    assert str(bad) in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [
    ["request", "--timeout", "nan", "--random", "1"],
    ["request", "--timeout", "0", "--random", "1"],
    ["request", "--interval", "-1", "--random", "2"],
    ["run", "--vehicles", "0"],
    ["run", "--rate", "inf"],
    ["run", "--speed", "-3"],
    ["run", "--batch-k", "0"],
    ["bench", "scale", "--vehicles", "100", "0"],
    ["complain", "--auction", "a", "--reason", "shill", "--timeout", "1e999"],
])
def test_out_of_range_values_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetbid.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_a_script_row_past_the_latest_start_is_a_bad_row() -> None:
    from fleetbid.service.script import parse_at

    assert parse_at("3600") == 3600.0
    with pytest.raises(ValueError, match="latest start"):
        parse_at("1e12")

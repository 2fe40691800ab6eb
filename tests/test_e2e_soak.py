"""`fleetbid soak` end to end, briefly: a real fleet under passengers, a flood from one
account, hostile stanzas and two replica-leader kills; the report must show rides served, the
flood held to its limit by the server, the hostile stanzas answered, no double outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_a_short_soak_reports_served_rejected_memory_and_no_double_outcome(
    tmp_path: Path,
) -> None:
    # Waits on the process itself, not only on its report: a soak that printed its report
    # and then never exited (docs/soak.md) fails here on the timeout.
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbid.cli", "soak", "--minutes", "0.3", "--vehicles", "10",
         "--speed", "300", "--passengers-per-s", "2", "--flood-per-s", "10",
         "--hostile-every", "2", "--sample-every", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=360)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    # It ended by itself: the exit guard (platform/exit_guard.py) had nothing to cut off.
    assert "still running" not in err and "killing child process" not in err
    r = json.loads(out)
    assert r["fatal"] == "" and r["errors"] == {}
    assert r["served"] > 0 and r["requests"] == r["served"] + sum(r["rejected"].values())
    assert r["double_outcomes"] == 0
    assert r["invariants"]["double_assignments"] == 0
    # The flood: the server let 10 a minute through and bounced the rest with the reason.
    flood = r["flood"]
    assert flood["answers"]["error:policy-violation"] >= flood["sent"] - 10 - 1
    # Hostile stanzas: not-understood from the MainManager, a bounce for another domain,
    # and the stream closed on one that is not XML, while the fleet kept serving.
    hostile = r["hostile"]["answers"]
    assert hostile["not-understood"] > 0 and hostile["error:remote-server-not-found"] > 0
    assert r["hostile"]["streams_closed"] >= 1
    assert len(r["replica_kills"]) == 2 and r["quorum"] is True
    assert r["restarts"]["replica_hosts_exited"] == 2
    assert {"server", "worker-0"} <= set(r["memory"])
    assert all(t["samples"] >= 2 for t in r["memory"].values())
    assert r["memory_flat"] is None  # 0.3 minutes: too short to judge


def test_a_command_whose_exit_hangs_is_cut_off_with_the_reason(tmp_path: Path) -> None:
    """After a command's work, a non-daemon thread that never ends kept the interpreter from
    exiting; the exit guard names what is left and ends the process with the command's code."""
    script = (
        "import sys, threading, time\n"
        "from fleetbid.platform import exit_guard\n"
        "threading.Thread(target=lambda: time.sleep(3600), name='stuck-worker').start()\n"
        "exit_guard.arm(3, grace_s=0.5)\n"
        "sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 3
    assert "still running 0.5 s after the command finished" in done.stderr
    assert "stuck-worker" in done.stderr and "in <lambda>" in done.stderr

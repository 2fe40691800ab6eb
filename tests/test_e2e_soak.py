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
    done = subprocess.run(
        [sys.executable, "-m", "fleetbid.cli", "soak", "--minutes", "0.3", "--vehicles", "10",
         "--speed", "300", "--passengers-per-s", "2", "--flood-per-s", "10",
         "--hostile-every", "2", "--sample-every", "2", "--json"],
        capture_output=True, text=True, timeout=360, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout)
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

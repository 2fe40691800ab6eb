"""Overload: a small fleet on a machine whose cores are busy with other work.

Latency may grow, but every request must still end (served, or rejected with a reason),
and no agent may refuse or fail to understand another agent's protocol message: late
answers are expected under load and are not errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
HOG = "while True: pass"


def test_a_busy_machine_ends_every_request_without_protocol_refusals(tmp_path: Path) -> None:
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 2)]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fleetbid", "run", "--json", "--vehicles", "30",
             "--requests", "30", "--rate", "30", "--seed", "4", "--log-level", "WARNING"],
            capture_output=True, text=True, timeout=540, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["served"] + summary["rejected"] == summary["requests"] == 30
    assert all(reason for reason in summary["rejections"]), summary["rejections"]
    assert summary["invariant_violations"] == 0, summary
    refusals = [line for line in proc.stderr.splitlines()
                if "fleetbid.protocol" in line and ("refuse" in line or "not-understood" in line)]
    assert not refusals, "\n".join(refusals[:20])

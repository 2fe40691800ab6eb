"""A fleet's run directory in the temp folder, and the clean-up of ones left by a crash.

The run directory holds the embedded server's certificates, CA key and database. `Fleet.stop`
removes it; a launcher killed with SIGKILL cannot, so each directory carries an owner marker
(pid and the process's start time, which tells a reused pid apart) and the next fleet to
start removes every directory whose owner is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "fleetbid-"
OWNER = "owner.pid"

log = logging.getLogger("fleetbid.rundir")


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' if unknown or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    # After the ")" field 3 (state) is index 0: starttime, field 22, is index 19.
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else ""


def make_run_dir(base: str | None = None) -> Path:
    """A fresh private directory with this process's owner marker."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    (path / OWNER).write_text(f"{os.getpid()} {process_start(os.getpid())}\n")
    return path


def owner_alive(path: Path) -> bool:
    """False only when the marker names a process that is gone (no marker: not ours)."""
    try:
        pid_text, _, start = (path / OWNER).read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return True
    now = process_start(pid)
    return bool(now) and (not start or now == start)


def clean_stale(base: str | None = None) -> list[Path]:
    """Remove run directories whose owner died; return them."""
    removed = []
    root = Path(base or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for path in root.glob(PREFIX + "*"):
            if path.is_dir() and not path.is_symlink() and (path / OWNER).is_file() \
                    and path.stat().st_uid == os.getuid() and not owner_alive(path):
                shutil.rmtree(path, ignore_errors=True)
                log.warning("removed the run directory %s of a fleet that died", path)
                removed.append(path)
    return removed

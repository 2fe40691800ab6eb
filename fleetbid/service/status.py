"""The running serve's health, for `fleetbid status` and for `fleetbid request`.

The serve rewrites a small JSON file next to its state file every second
(`.fleetbid/serve.status.json`): the launcher's health snapshot (server, workers, replica
hosts and quorum, queue, served/min) and when it was written. A file rather than a control
socket: nothing more listens, not even on loopback, so there is nothing more to secure; any
reader (cat, jq, a script) can use it; and a serve that died leaves a file whose `updated`
stops moving and whose pid is gone, which readers detect. The price is up to a second of lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from fleetbid.run.launcher import Fleet
from fleetbid.service.state import NoRunningFleet, load_running, state_path, write_atomically

WRITE_EVERY_S = 1.0
STALE_AFTER_S = 15.0  # a serve this late with its status is stuck (or stopped writing)


def status_path(state: Path) -> Path:
    """`.fleetbid/serve.json` -> `.fleetbid/serve.status.json`."""
    return state.with_name(f"{state.stem}.status{state.suffix or '.json'}")


def write_status(path: Path, snapshot: dict[str, Any]) -> None:
    document = {**snapshot, "pid": os.getpid(), "updated": time.time()}
    write_atomically(path, json.dumps(document, indent=2) + "\n", 0o644)


async def keep_status(fleet: Fleet, path: Path) -> None:
    """Rewrite the status file every WRITE_EVERY_S until cancelled."""
    while True:
        write_status(path, fleet.health.snapshot())
        await asyncio.sleep(WRITE_EVERY_S)


def remove_status(path: Path, pid: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def read_status(state_file: Path) -> dict[str, Any]:
    """The running serve's status; NoRunningFleet if none runs or it stopped reporting."""
    load_running(state_file)  # the serve is alive and its XMPP port answers
    path = status_path(state_file)
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NoRunningFleet(f"no readable status file {path}: {exc}") from None
    if not isinstance(status, dict) or not isinstance(status.get("updated"), int | float):
        raise NoRunningFleet(f"{path} is not a fleetbid status file")
    age = time.time() - status["updated"]
    status["age_s"] = round(age, 1)
    if age > STALE_AFTER_S:
        status["ok"] = False
        status["fatal"] = status.get("fatal") or f"the serve has not updated {path} for {age:.0f} s"
    return status


def refusal(state_file: Path) -> str:
    """Why a new request must be refused now ('' if it may go): a lost quorum.

    Checked by `fleetbid request` before its passenger asks: the MainManager would accept
    the request and then wait for managers that cannot run an auction."""
    try:
        status = read_status(state_file)
    except NoRunningFleet:
        return ""  # an older serve without a status file: let the request go
    replicas = status.get("replicas") or {}
    return "" if replicas.get("quorum", True) else str(replicas.get("reason") or "no quorum")


def format_status(s: dict[str, Any]) -> str:
    server = s["server"]
    replicas = s["replicas"]
    workers = s["workers"]
    live_workers = sum(1 for w in workers if w["alive"])
    lines = [
        f"health          {'ok' if s['ok'] else 'DEGRADED'}"
        + (f": {s['fatal']}" if s.get("fatal") else ""),
        f"server          pid {server['pid']} "
        + ("alive" if server["alive"] else f"exited ({server['exit_code']})"),
        f"workers         {live_workers} of {len(workers)} alive",
    ]
    if replicas["hosts"]:
        quorum = "yes" if replicas["quorum"] else f"NO ({replicas['reason']})"
        lines.append(f"replicas        {replicas['live_hosts']} of {len(replicas['hosts'])} "
                     f"hosts alive (group of {replicas['size']}), {replicas['host_exits']} "
                     f"exited; quorum {quorum}")
    else:
        lines.append("replicas        none (managers not replicated)")
    queue = "?" if s.get("queue") is None else s["queue"]
    rate = "?" if s.get("served_per_min") is None else s["served_per_min"]
    lines += [f"queue           {queue} requests waiting for a manager",
              f"served/min      {rate} (served {s.get('served')}, unserved {s.get('unserved')})",
              f"updated         {s['age_s']} s ago"]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 healthy, 1 degraded (e.g. quorum lost), 2 no fleet running."""
    try:
        status = read_status(state_path(args.state))
    except NoRunningFleet as exc:
        print(f"fleetbid status: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(status) if args.json else format_status(status))
    return 0 if status["ok"] else 1

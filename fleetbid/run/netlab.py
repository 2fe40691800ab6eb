"""A LAN of "hosts" made of Linux network namespaces, for the multi-host demo and tests.

Nothing touches the machine's own network: a switch namespace `fb-<tag>-sw` holds a bridge,
each host namespace `fb-<tag>-hN` gets one veth cable to it (created straight inside the
namespaces, never in the root one) and the address 10.77.0.N/24, a private range that
exists only inside these namespaces. `delete()` kills every process left in them and
removes them, which removes their cables and bridge too. Needs root (CAP_NET_ADMIN) and
`ip` from iproute2.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

SUBNET = "10.77.0"
PREFIX = "fb-"


class LabError(RuntimeError):
    """The namespaces could not be made (not permitted, or no iproute2)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None if they can."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"{PREFIX}probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class NetLab:
    """`hosts` namespaces on one bridge; host i (1-based) has address 10.77.0.i."""

    def __init__(self, hosts: int = 3, tag: str | None = None) -> None:
        if not 1 <= hosts <= 200:
            raise ValueError("hosts must be 1..200")
        self.hosts = hosts
        self.tag = tag or secrets.token_hex(2)
        self.switch = f"{PREFIX}{self.tag}-sw"
        self.made: list[str] = []

    def ns(self, host: int) -> str:
        return f"{PREFIX}{self.tag}-h{host}"

    @staticmethod
    def address(host: int) -> str:
        return f"{SUBNET}.{host}"

    def create(self) -> NetLab:
        try:
            self._add_ns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            # No IGMP querier on this LAN: flood multicast rather than snoop it away.
            _ip("-n", self.switch, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for h in range(1, self.hosts + 1):
                ns = self.ns(h)
                self._add_ns(ns)
                _ip("-n", self.switch, "link", "add", f"h{h}", "type", "veth",
                    "peer", "name", "eth0", "netns", ns)
                _ip("-n", self.switch, "link", "set", f"h{h}", "master", "br0", "up")
                _ip("-n", ns, "addr", "add", f"{self.address(h)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up", "multicast", "on")
                _ip("-n", ns, "link", "set", "lo", "up")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.delete()
            raise LabError(f"could not build the namespaces: {str(detail).strip()}") from None
        return self

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.made.append(name)

    def command(self, host: int, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def popen(self, host: int, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """Start `argv` inside host `host` (its own session: the lab, not Ctrl-C, ends it)."""
        return subprocess.Popen(self.command(host, argv), text=True,  # type: ignore[call-overload]
                                start_new_session=True, **kwargs)

    def pids(self, host: int) -> list[int]:
        out = _ip("netns", "pids", self.ns(host), check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    def crash(self, host: int, timeout_s: float = 10.0) -> list[int]:
        """SIGKILL every process of host `host`: what a power cut does to it. Until none is
        left: a process started while the first ones were killed (a worker a dying parent
        was spawning) would keep its sockets, and the host's sessions, open."""
        killed: list[int] = []
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids(host)) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed += [pid for pid in pids if pid not in killed]
            time.sleep(0.05)  # the kernel tears the processes down; then look again
        return killed

    def link(self, host: int, up: bool) -> None:
        """Unplug (or plug back) host `host`'s cable at the switch: a partition."""
        _ip("-n", self.switch, "link", "set", f"h{host}", "up" if up else "down")

    def delete(self) -> None:
        """Kill what still runs in the hosts, then remove every namespace made."""
        for name in self.made:
            out = _ip("netns", "pids", name, check=False).stdout
            for pid in (int(p) for p in out.split() if p.isdigit()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for name in self.made:
            while _ip("netns", "pids", name, check=False).stdout.split() \
                    and time.monotonic() < deadline:
                time.sleep(0.1)  # cleanup only: processes are given a moment to stop
            for p in _ip("netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(p), signal.SIGKILL)
        for name in reversed(self.made):
            _ip("netns", "del", name, check=False)
        self.made.clear()

    def __enter__(self) -> NetLab:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()

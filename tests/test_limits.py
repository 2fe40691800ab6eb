"""Limits of issue 15 (finding 5), without a server: requests per passenger account per
minute (the embedded server's guard), log-safe foreign text, and run directories left by a
serve killed with SIGKILL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fleetbid.core.text import loggable
from fleetbid.platform import server_guard as guard
from fleetbid.platform.rate_limit import RequestLimiter
from fleetbid.run import rundir


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- requests per account per minute -----------------------------------------------------------
def test_limiter_allows_n_a_minute_per_account_then_refuses_until_the_window_slides() -> None:
    clock = Clock()
    limiter = RequestLimiter("main-manager", 3, clock=clock)
    assert [limiter.allow("passenger-a@d") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("passenger-b@d")  # another account has its own budget
    clock.now += 59.0
    assert not limiter.allow("passenger-a@d")
    clock.now += 1.0  # the first three are a minute old now
    assert [limiter.allow("passenger-a@d") for _ in range(4)] == [True, True, True, False]
    assert limiter.refused == 4
    assert "more than 3 requests per minute" in limiter.reason()


def test_limiter_forgets_quiet_accounts() -> None:
    clock = Clock()
    limiter = RequestLimiter("main-manager", 2, clock=clock)
    for i in range(100):
        limiter.allow(f"passenger-{i}@d")
    clock.now += 61.0
    limiter.allow("passenger-new@d")
    assert set(limiter.seen) == {"passenger-new@d"}


def test_only_client_accounts_writing_to_the_target_count() -> None:
    limiter = RequestLimiter("main-manager", 1)
    assert limiter.counts("passenger-x", "main-manager")
    assert limiter.counts("complainant-x", "main-manager")
    assert not limiter.counts("vehicle-3", "main-manager")  # the fleet's own agents
    assert not limiter.counts("passenger-x", "auction-0")
    with pytest.raises(ValueError):
        RequestLimiter("main-manager", 0)


class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)


def test_guard_refuses_the_excess_with_a_policy_violation_and_the_reason() -> None:
    limiter = RequestLimiter("main-manager", 2)

    def message(sender: str) -> ET.Element:
        return ET.Element("message", {"from": f"{sender}@localhost/r",
                                      "to": "main-manager@localhost", "id": "m"})

    assert [guard.over_limit(limiter, message("passenger-a")) for _ in range(3)] == [
        False, False, True]
    assert not any(guard.over_limit(limiter, message("vehicle-1")) for _ in range(5))
    transport = FakeTransport()
    guard.bounce(transport, message("passenger-a"), "policy-violation", limiter.reason())
    reply = ET.fromstring(transport.out[0])
    ns = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
    assert reply.find(f"error/{ns}policy-violation") is not None
    assert "more than 2 requests per minute" in (reply.findtext(f"error/{ns}text") or "")


# -- foreign text in logs ----------------------------------------------------------------------
def test_loggable_escapes_controls_and_caps_the_length() -> None:
    forged = "x\n2026-01-01 ERROR forged line\r\x1b[31m\x9b0m\u2028\x00\\"
    out = loggable(forged)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\x00" not in out
    assert "\x9b" not in out and "\u2028" not in out
    assert out == ("x\\n2026-01-01 ERROR forged line\\r\\x1b[31m\\x9b0m\\u2028\\x00\\\\")
    long = loggable("é" * 1000)
    assert long == "é" * 200 + "...[1000 chars]"
    assert loggable(ValueError("a\nb")) == "a\\nb"


def test_rejected_message_text_is_logged_escaped(caplog: pytest.LogCaptureFixture) -> None:
    from fleetbid.behaviours import base

    with caplog.at_level(logging.WARNING, logger=base.log.name):
        base.log.warning("%s: x from %s: %s", "me", loggable("a\nb"), loggable("y" * 500))
    assert len(caplog.records) == 1 and "\n" not in caplog.text.strip()
    assert len(caplog.records[0].getMessage()) < 300


# -- run directories left by a crash -----------------------------------------------------------
def test_a_dead_owners_run_dir_is_removed_a_live_ones_and_foreign_ones_are_kept(
    tmp_path: Path,
) -> None:
    code = ("import sys; from fleetbid.run import rundir; "
            "print(rundir.make_run_dir(sys.argv[1]))")
    dead = Path(subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                               capture_output=True, text=True,
                               env={**os.environ}).stdout.strip())
    (dead / "certs").mkdir()
    (dead / "certs" / "ca_key.pem").write_text("secret")
    mine = rundir.make_run_dir(str(tmp_path))
    foreign = tmp_path / "fleetbid-foreign"  # no owner marker: not ours to judge
    foreign.mkdir()
    assert dead.exists() and rundir.owner_alive(mine) and not rundir.owner_alive(dead)
    assert rundir.clean_stale(str(tmp_path)) == [dead]
    assert not dead.exists() and mine.exists() and foreign.exists()


def test_a_reused_pid_does_not_keep_a_stale_run_dir(tmp_path: Path) -> None:
    path = rundir.make_run_dir(str(tmp_path))
    # Our pid, but a different start time: the owner that wrote it is gone.
    (path / rundir.OWNER).write_text(f"{os.getpid()} 1\n")
    assert rundir.clean_stale(str(tmp_path)) == [path]

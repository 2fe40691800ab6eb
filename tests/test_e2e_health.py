"""A served fleet's health end to end (issue 15, findings 2, 3 and 5): a real `fleetbid serve`
subprocess whose server or replica hosts are killed with SIGKILL, `fleetbid status` and
`fleetbid request` processes joining it, and the embedded server's per-account limit."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from spade.behaviour import CyclicBehaviour

from fleetbid.platform.eventloop import run
from fleetbid.platform.xmpp_agent import XmppAgent, stanza_xml, start_agents
from fleetbid.platform.xmpp_server import EmbeddedXmppServer
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.run import rundir
from fleetbid.service.soak_load import LoadClient, stream_breaker
from tests.test_service import STARTS, descendants, fleetbid, running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    log = (tmp_path / "serve.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbid.cli", "serve", "--vehicles", "10", "--speed", "300"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log, text=True)
    log.close()
    state = tmp_path / ".fleetbid" / "serve.json"
    deadline = time.monotonic() + 120
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve did not start: {(tmp_path / 'serve.err').read_text()}")
        time.sleep(0.2)
    yield proc, tmp_path
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_serve_notices_its_server_died_and_stops_cleanly(
    serve: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, cwd = serve
    children = descendants(proc.pid)
    server = [p for p in children if "fleetbid.platform._server_main" in cmdline(p)]
    assert len(server) == 1
    os.kill(server[0], signal.SIGKILL)
    proc.wait(timeout=90)  # the old serve stayed up, silently, for good
    err = (cwd / "serve.err").read_text()
    assert proc.returncode == 1, err
    assert f"error: the embedded XMPP server (pid {server[0]}) exited with code -9" in err
    assert not (cwd / ".fleetbid" / "serve.json").exists()
    assert not (cwd / ".fleetbid" / "serve.status.json").exists()
    deadline = time.monotonic() + 10
    while any(running(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)  # multiprocessing's resource tracker leaves on its own, just after
    assert not [p for p in children if running(p)]


def test_the_run_dir_of_a_serve_killed_with_sigkill_is_cleaned_at_the_next_start(
    serve: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, _ = serve
    children = descendants(proc.pid)
    server = next(p for p in children if "fleetbid.platform._server_main" in cmdline(p))
    args = cmdline(server).split()
    run_dir = Path(args[args.index("--run-dir") + 1]).parent  # <run dir>/xmpp
    assert (run_dir / "xmpp" / "certs" / "ca_key.pem").exists()
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60  # the server and workers notice their parent is gone
    while any(running(p) for p in children):
        assert time.monotonic() < deadline, [cmdline(p) for p in children if running(p)]
        time.sleep(0.2)
    assert run_dir.exists()  # nobody could remove it...
    assert run_dir in rundir.clean_stale(str(run_dir.parent))  # ...until the next start
    assert not run_dir.exists()


def status(cwd: Path) -> tuple[int, dict]:
    done = fleetbid("status", "--json", cwd=cwd)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_lost_quorum_is_reported_and_new_requests_are_refused_with_the_reason(
    serve: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, cwd = serve
    code, health = status(cwd)
    assert code == 0 and health["ok"] and health["replicas"]["quorum"]
    hosts = health["replicas"]["hosts"]
    assert len(hosts) == 4 and all(h["alive"] for h in hosts)
    for host in hosts[1:]:  # three of four: one host cannot be a majority of three
        os.kill(host["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while health["replicas"]["quorum"]:
        assert time.monotonic() < deadline, health
        time.sleep(0.5)
        code, health = status(cwd)
    assert code == 1 and not health["ok"]
    assert health["replicas"]["reason"].startswith("no quorum")
    text = fleetbid("status", cwd=cwd)
    assert "quorum NO (no quorum" in text.stdout and text.returncode == 1

    done = fleetbid("request", "--from-node", STARTS[0], "--to-node", STARTS[9], "--json",
                    cwd=cwd)
    assert done.returncode == 1, done.stderr
    outcome = json.loads(done.stdout)
    assert not outcome["served"] and outcome["reason"].startswith("refused: no quorum")

    proc.send_signal(signal.SIGTERM)  # the serve itself stayed up, and stops as usual
    proc.wait(timeout=60)
    assert proc.returncode == 0
    err = (cwd / "serve.err").read_text()
    assert "lost its quorum" in err


# --- memory: a stopped agent is freed ---------------------------------------------------------
def test_stopped_agents_are_garbage_collected(tmp_path: Path) -> None:
    """One agent per passenger: slixmpp's leftover task and keepalive timer kept every
    stopped one alive (the soak's passenger worker grew ~10 MB/min; docs/soak.md)."""

    async def scenario() -> list[bool]:
        with EmbeddedXmppServer(tmp_path) as server:
            refs = []
            for i in range(3):
                agent = XmppAgent(f"passenger-gc{i}", server.endpoint)
                await start_agents([agent])
                await agent.stop()
                refs.append(weakref.ref(agent))
                del agent
            await asyncio.sleep(0)  # let the cancelled task finish
            gc.collect()
            return [ref() is not None for ref in refs]

    assert run(scenario()) == [False, False, False]


def test_the_server_forgets_the_streams_it_closed(tmp_path: Path) -> None:
    """pyjabber kept a connection it lost (here: closed on a stanza that is not XML) in its
    peer table for ever, TLS transport and parser included: the soak's server grew with
    every hostile stream it closed (docs/soak.md)."""

    async def scenario() -> str:
        with EmbeddedXmppServer(tmp_path) as server:
            for _ in range(3):
                client = LoadClient("hostile", server.endpoint)
                await start_agents([client])
                client.write(stream_breaker(str(client.jid.bare)))
                await wait_for(lambda c=client: not c.client.is_connected(),  # type: ignore[misc]
                               "the server closed the stream")
                await client.stop()
            polite = XmppAgent("passenger-polite", server.endpoint)
            await start_agents([polite])
            await polite.stop()
        return server.log_path.read_text()

    log = run(scenario())
    assert "policy-violation" in log or "unparsable" in log or "closed" in log
    assert "at stop, 0 client connections registered" in log


def test_the_server_removes_a_passenger_account_after_its_last_connection(
    tmp_path: Path,
) -> None:
    """One account per passenger, kept for ever by pyjabber (credentials, presence entry):
    the soak's server grew with every ride (docs/soak.md). Now a client account goes
    `client_account_retention_s` after its last connection closed, and can come back."""

    async def scenario() -> str:
        with EmbeddedXmppServer(tmp_path, client_account_retention_s=0.2) as server:
            vehicle = XmppAgent("vehicle-1", server.endpoint)  # fleet accounts stay
            await start_agents([vehicle])
            removed: dict[str, int] = {}
            for n in (1, 2, 3, 1):  # passenger-acct1 comes back after its removal
                name = f"passenger-acct{n}"
                agent = XmppAgent(name, server.endpoint)
                await start_agents([agent])
                await agent.stop()
                removed[name] = removed.get(name, 0) + 1
                await wait_for(
                    lambda name=name, want=removed[name]: server.log_path.read_text().count(  # type: ignore[misc]
                        f"removed client account {name} ") >= want, f"{name} removed")
            await vehicle.stop()
        return server.log_path.read_text()

    log = run(scenario())
    assert "removed client account vehicle-1" not in log
    # The one presence entry left is vehicle-1's (a fleet account); no passenger's.
    assert "at stop, 0 client connections registered, 1 accounts with a presence entry" in log


# --- requests per passenger account per minute, on the real server ------------------------------
class _Count(CyclicBehaviour):
    async def run(self) -> None:
        msg = await self.receive(timeout=5)
        if msg is not None:
            self.agent.got += 1  # type: ignore[attr-defined]


class Target(XmppAgent):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.got = 0
        self.add_behaviour(_Count())


async def wait_for(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


def test_the_server_refuses_a_passenger_accounts_excess_requests(tmp_path: Path) -> None:
    limit = 3

    async def scenario() -> tuple[int, dict[str, int], int]:
        with EmbeddedXmppServer(tmp_path, limit_target="main-manager",
                                max_requests_per_minute=limit) as server:
            endpoint = server.endpoint
            target = Target("main-manager", endpoint)
            flooder = LoadClient("flood", endpoint)
            vehicle = XmppAgent("vehicle-1", endpoint)
            await start_agents([target, flooder, vehicle])
            try:
                body = m.RideRequest(request_id="r1", source="1", destination="2",
                                     requested_at=0.0)
                for _ in range(limit + 2):
                    flooder.write(stanza_xml(codec.encode(target.jid.bare, body),
                                             str(flooder.jid)))
                await wait_for(lambda: flooder.answers["error:policy-violation"] == 2,
                               "the excess bounced")
                await wait_for(lambda: target.got == limit, "the allowed ones arrived")
                # The fleet's own agents are not limited.
                assert vehicle.client is not None
                for _ in range(limit + 2):
                    vehicle.client.send_raw(stanza_xml(codec.encode(target.jid.bare, body),
                                                       str(vehicle.jid)))
                await wait_for(lambda: target.got == 2 * limit + 2, "the vehicle's arrived")
                log = server.log_path.read_text()
                return target.got, dict(flooder.answers), log.count("policy-violation")
            finally:
                await asyncio.gather(target.stop(), flooder.stop(), vehicle.stop(),
                                     return_exceptions=True)

    got, answers, logged = run(scenario())
    assert got == 2 * limit + 2
    assert answers == {"error:policy-violation": 2}
    assert logged == 1  # a flood is logged once per 100 refusals, not per message

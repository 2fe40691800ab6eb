"""XMPP platform layer against a real embedded pyjabber server (real sockets, no mocks)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyjabber
import pytest
from spade.behaviour import CyclicBehaviour, OneShotBehaviour
from spade.message import Message

from fleetbid.bench.raw_xmpp import measure_xmpp_throughput
from fleetbid.platform.eventloop import run
from fleetbid.platform.xmpp_agent import COUNTERS, XmppAgent, on_receive, on_send, start_agents
from fleetbid.platform.xmpp_server import (
    EmbeddedXmppServer,
    XmppEndpoint,
    external_endpoint,
    parse_xmpp_address,
)

pytestmark = pytest.mark.timeout(120)

PKG_CERTS = Path(pyjabber.__file__).parent / "network" / "certs"


# -- /proc helpers (psutil is not a dependency) ------------------------------------------
def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, just unreaped


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def _listening(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of the TCP sockets `pid` listens on, read from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                continue
            hex_ip, hex_port = cols[1].split(":")
            if v6:
                ip = "v6:" + hex_ip
            else:
                ip = ".".join(str(int(hex_ip[i : i + 2], 16)) for i in (6, 4, 2, 0))
            found.add((ip, int(hex_port, 16)))
    return found


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedXmppServer]:
    with EmbeddedXmppServer(tmp_path_factory.mktemp("xmpp")) as srv:
        yield srv


# -- server --------------------------------------------------------------------------
@pytest.mark.e2e
def test_two_servers_loopback_only_and_clean_stop(tmp_path: Path) -> None:
    certs_before = _snapshot(PKG_CERTS)
    cwd_before = set(os.listdir("."))
    a = EmbeddedXmppServer(tmp_path / "a")
    b = EmbeddedXmppServer(tmp_path / "b")
    with a, b:
        for srv in (a, b):
            ep = srv.endpoint
            assert ep.embedded and ep.host == "127.0.0.1" and ep.domain == "localhost"
            assert srv.pid is not None
            listening = _listening(srv.pid)
            assert (ep.host, ep.port) in listening
            assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening
            assert not {port for _, port in listening} & {5222, 5269, 9090}, listening
            assert (srv.run_dir / "xmpp-server.log").exists()
            assert (srv.run_dir / "certs" / "localhost_cert.pem").exists()
        assert a.endpoint.port != b.endpoint.port

        # a login makes the server fork its SASL hashing pool: those must die too
        agent = XmppAgent("pool-probe", a.endpoint)
        run(_start_stop(agent))
        pgids = [a.pid, b.pid]
        # The server's process group (it would hold pyjabber's SASL pool workers too; the
        # embedded server now hashes inline, see docs/decisions.md) is alive while it runs...
        assert a.pid in _group_members(a.pid)
    for pgid in pgids:
        assert pgid is not None and not _alive(pgid)
        assert _group_members(pgid) == []
    a.stop()  # idempotent
    assert _snapshot(PKG_CERTS) == certs_before
    assert set(os.listdir(".")) == cwd_before
    with pytest.raises(RuntimeError):
        _ = a.endpoint


async def _start_stop(agent: XmppAgent) -> None:
    await start_agents([agent])
    await agent.stop()


_PARENT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from fleetbid.platform.xmpp_server import EmbeddedXmppServer
    srv = EmbeddedXmppServer(sys.argv[1])
    srv.start()
    print(srv.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.e2e
def test_killed_parent_leaves_no_orphan(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert _alive(server_pid)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the EOF watch helps
        parent.wait()
        deadline = time.monotonic() + 15
        while (_alive(server_pid) or _group_members(server_pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid)
        assert _group_members(server_pid) == []
    finally:
        parent.kill()
        parent.wait()


def test_parse_xmpp_address() -> None:
    assert parse_xmpp_address("127.0.0.1:5222") == ("127.0.0.1", 5222)
    assert parse_xmpp_address(" xmpp.example.org:15222 ") == ("xmpp.example.org", 15222)
    assert parse_xmpp_address("[::1]:5222") == ("::1", 5222)
    for bad, needle in [
        ("localhost", "HOST:PORT"),
        (":5222", "HOST:PORT"),
        ("host:", "not a number"),
        ("host:abc", "not a number"),
        ("host:0", "outside"),
        ("host:70000", "outside"),
        ("::1:5222", "brackets"),
        ("[]:5222", "empty host"),
    ]:
        with pytest.raises(ValueError, match=needle):
            parse_xmpp_address(bad)
    ep = external_endpoint("10.0.0.5:5222", "fleet.local")
    assert ep == XmppEndpoint("10.0.0.5", 5222, "fleet.local", embedded=False)
    assert ep.jid("v1") == "v1@fleet.local"
    with pytest.raises(ValueError, match="domain"):
        external_endpoint("10.0.0.5:5222", "a@b")


# -- agents --------------------------------------------------------------------------
class _Collect(CyclicBehaviour):
    def __init__(self, inbox: asyncio.Queue[Message]) -> None:
        super().__init__()
        self.inbox = inbox

    async def run(self) -> None:
        msg = await self.receive(timeout=1)
        if msg is not None:
            await self.inbox.put(msg)


class _SendOne(OneShotBehaviour):
    def __init__(self, msg: Message) -> None:
        super().__init__()
        self.msg = msg

    async def run(self) -> None:
        assert isinstance(self.agent, XmppAgent)
        await self.agent.send(self.msg, self)


async def _same_process(endpoint: XmppEndpoint) -> dict[str, Any]:
    alice, bob = XmppAgent("alice-local", endpoint), XmppAgent("bob-local", endpoint)
    assert alice.password != bob.password
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    bob.add_behaviour(_Collect(inbox))
    await start_agents([alice, bob])
    before = COUNTERS.as_dict()
    seen: list[str] = []
    on_send.append(lambda m: seen.append(f"send:{m.body}"))
    on_receive.append(lambda m: seen.append(f"recv:{m.body}"))
    try:
        alice.add_behaviour(_SendOne(Message(to=str(bob.jid), body="hello")))
        got = await asyncio.wait_for(inbox.get(), 10)
    finally:
        on_send.clear()
        on_receive.clear()
        await alice.stop()
        await bob.stop()
    after = COUNTERS.as_dict()
    return {
        "body": got.body,
        "alice": (alice.sent, alice.sent_over_xmpp),
        "bob_received": bob.received,
        "delta": {k: after[k] - before[k] for k in after},
        "seen": seen,
    }


@pytest.mark.e2e
def test_same_process_message_does_not_cross_xmpp(server: EmbeddedXmppServer) -> None:
    result = run(_same_process(server.endpoint))
    assert result["body"] == "hello"
    assert result["alice"] == (1, 0)
    assert result["bob_received"] == 1
    assert result["delta"] == {"sent": 1, "xmpp_sent": 0, "received": 1}
    assert sorted(result["seen"]) == ["recv:hello", "send:hello"]


def _echo_process(endpoint: XmppEndpoint, name: str, out: Any) -> None:
    """Other process: echo one message back (as metadata-only, body-less), report counts."""
    from fleetbid.platform.eventloop import install_uvloop

    install_uvloop()

    async def main() -> None:
        agent = XmppAgent(name, endpoint)

        class Echo(CyclicBehaviour):
            async def run(self) -> None:
                msg = await self.receive(timeout=20)
                if msg is None:
                    self.kill()
                    return
                reply = Message(to=str(msg.sender), metadata={"echo": msg.body or ""})
                await agent.send(reply, self)
                self.kill()

        echo = Echo()
        agent.add_behaviour(echo)
        await start_agents([agent])
        out.put(("ready", str(agent.jid)))
        await echo.join()
        await asyncio.sleep(0.2)
        out.put(("counts", (agent.sent, agent.sent_over_xmpp, agent.received)))
        await agent.stop()

    run(main())


async def _cross_process(endpoint: XmppEndpoint, peer: str) -> dict[str, Any]:
    me = XmppAgent("sender-xproc", endpoint)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    me.add_behaviour(_Collect(inbox))
    await start_agents([me])
    try:
        me.add_behaviour(_SendOne(Message(to=peer, body="ping", metadata={"k": "v"})))
        got = await asyncio.wait_for(inbox.get(), 15)
    finally:
        await me.stop()
    return {"echo": got.get_metadata("echo"), "body": got.body, "me": (me.sent, me.sent_over_xmpp)}


@pytest.mark.e2e
def test_cross_process_message_crosses_xmpp(server: EmbeddedXmppServer) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_echo_process, args=(server.endpoint, "echo-xproc", out))
    proc.start()
    try:
        kind, peer = out.get(timeout=30)
        assert kind == "ready"
        result = run(_cross_process(server.endpoint, peer))
        kind, counts = out.get(timeout=30)
        assert kind == "counts"
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    assert result["echo"] == "ping"  # a body-less reply still arrives over XMPP
    assert not result["body"]  # spade turns a missing <body> into ""
    assert result["me"] == (1, 1)
    assert counts == (1, 1, 1)


@pytest.mark.e2e
def test_raw_bench_tiny(server: EmbeddedXmppServer) -> None:
    r = measure_xmpp_throughput(server.endpoint, messages=500, window=100, rtt_samples=20)
    assert r["messages"] == 500
    assert r["xmpp_msgs_per_s"] > 0 and r["seconds"] > 0
    assert r["xmpp_rtt_p50_ms"] > 0


def test_spade_keeps_no_copies_of_sent_messages() -> None:
    """spade's per-agent TraceStore kept the last 1,000 in-process messages of every agent
    (docs/soak.md): nothing reads it in fleetbid, so it stays empty."""
    from spade.message import Message

    from fleetbid.platform.xmpp_agent import XmppAgent

    agent = XmppAgent("vehicle-1", XmppEndpoint("127.0.0.1", 5222, "localhost", embedded=False))
    for n in range(2_000):
        agent.traces.append(Message(to="auditor@localhost", body=f"copy {n}"))
    assert len(agent.traces.store) == 0

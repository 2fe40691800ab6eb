"""End-to-end: what the embedded server vouches for and refuses (docs/security.md).

One embedded server; real agents and sockets. A "compromised passenger" logs in with an
account made from the client key (what `fleetbid request` holds) and writes raw stanzas
naming the MainManager, a vehicle and the server as sender, addresses other domains, sends
oversized and overly nested stanzas. An outsider without any key tries to register.
Everything is recorded by one scenario run in one event loop; the tests assert on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatcherId
from spade.agent import AuthenticationFailure, DisconnectedException
from spade.behaviour import CyclicBehaviour
from spade.message import Message

from fleetbid.platform.accounts import account_password
from fleetbid.platform.eventloop import run
from fleetbid.platform.xmpp_agent import XmppAgent, start_agents
from fleetbid.platform.xmpp_server import EmbeddedXmppServer, XmppEndpoint

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LIMIT = 16 * 1024  # small, so one TCP read can hold a whole oversized stanza
WAIT = 20.0  # upper bound on any single wait for an event (a busy machine is slow)
FORGED = {
    "f-main": "main-manager@localhost/forged",
    "f-vehicle": "vehicle-1@localhost",
    "f-server": "localhost",
    "f-none": None,
}
FOREIGN = {"x-ip": "someone@127.0.0.2", "x-name": "someone@elsewhere.example"}


@dataclass
class Outcome:
    attacker: str = ""  # the compromised passenger's full JID
    received: dict[str, str] = field(default_factory=dict)  # body -> sender seen by receiver
    subscribe_from: str = ""
    disco_to: str = ""
    bounces: dict[str, str] = field(default_factory=dict)  # message id -> error condition
    s2s_accepted: bool | None = None
    inbound_s2s_closed: bool = False
    refused_streams: dict[str, str] = field(default_factory=dict)  # case -> stream error
    registration_errors: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # step -> exception
    log: str = ""
    cmdline: str = ""
    secret: str = ""


class _Collect(CyclicBehaviour):
    def __init__(self, inbox: asyncio.Queue[Message]) -> None:
        super().__init__()
        self.inbox = inbox

    async def run(self) -> None:
        msg = await self.receive(timeout=1)
        if msg is not None:
            self.inbox.put_nowait(msg)


async def _next(inbox: asyncio.Queue[Message], body: str) -> str:
    """Sender of the first message with `body` (others are skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            msg = await inbox.get()
            if msg.body == body:
                return str(msg.sender)


def _on_id(agent: XmppAgent, stanza_id: str) -> asyncio.Future[Any]:
    """Future of the next stanza with this id arriving on `agent`'s stream."""
    assert agent.client is not None
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def got(stanza: Any) -> None:
        if not fut.done():
            fut.set_result(stanza)

    agent.client.register_handler(Callback(f"wait-{stanza_id}", MatcherId(stanza_id), got))
    return fut


async def _stream_error_after(agent: XmppAgent, raw: str) -> str:
    """Send `raw`; the condition of the stream error the server answers with."""
    client = agent.client
    assert client is not None
    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    client.add_event_handler(
        "stream_error", lambda e: fut.done() or fut.set_result(e["condition"])
    )
    client.send_raw(raw)
    try:
        return await asyncio.wait_for(fut, WAIT)
    finally:
        client.abort()


async def _try_register(endpoint: XmppEndpoint, name: str, password: str) -> str:
    """Log in as `name` with `password`, registering first; 'refused' or '' (logged in)."""
    agent = XmppAgent(name, endpoint, password)
    try:
        await asyncio.wait_for(agent.start(auto_register=True), WAIT)
    except (AuthenticationFailure, DisconnectedException):  # pyjabber also closes the stream
        return "refused"
    finally:
        with contextlib.suppress(Exception):
            await agent.stop()
    return ""


class Scene:
    """The agents of the scenario; each step records into `out` (a failed step records why)."""

    def __init__(self, server: EmbeddedXmppServer) -> None:
        self.server, self.out = server, Outcome()
        self.fleet = fleet = server.endpoint  # what the launcher and its workers hold
        assert fleet.accounts is not None
        # What `fleetbid request` holds (the serve state file), and an outsider: no key.
        self.client_side = XmppEndpoint(fleet.host, fleet.port, fleet.domain, True,
                                        fleet.accounts.for_clients())
        self.keyless = XmppEndpoint(fleet.host, fleet.port, fleet.domain, True)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.manager = XmppAgent("main-manager", fleet)
        self.receiver = XmppAgent("vehicle-0", fleet)
        self.receiver.add_behaviour(_Collect(self.inbox))
        self.attacker = XmppAgent("passenger-evil", self.client_side)
        self.spare = {n: XmppAgent(f"passenger-{n}", self.client_side)
                      for n in ("big", "huge", "deep")}

    @property
    def agents(self) -> list[XmppAgent]:
        return [self.manager, self.receiver, self.attacker, *self.spare.values()]

    def send(self, raw: str) -> None:
        assert self.attacker.client is not None
        self.attacker.client.send_raw(raw)

    async def play(self) -> Outcome:
        await start_agents(self.agents)
        assert self.attacker.client is not None
        self.out.attacker = str(self.attacker.client.boundjid.full)
        try:
            for step in (self.forge, self.foreign_domains, self.inbound_s2s, self.limits,
                         self.registration):
                try:
                    await step()
                except Exception as exc:  # the tests of this step fail, the others still run
                    self.out.failed[step.__name__] = repr(exc)
        finally:
            for agent in self.agents:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(agent.stop(), 10)
        return self.out

    async def forge(self) -> None:
        """Forged `from` on messages, presence and IQ."""
        out, receiver = self.out, self.receiver
        for body, claimed in FORGED.items():
            frm = f" from='{claimed}'" if claimed else ""
            self.send(f"<message to='vehicle-0@localhost'{frm} type='chat'><body>{body}</body>"
                      "</message>")
            out.received[body] = await _next(self.inbox, body)
        subscribed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        assert receiver.client is not None
        receiver.client.add_event_handler(
            "presence_subscribe", lambda p: subscribed.done() or subscribed.set_result(p["from"])
        )
        self.send("<presence to='vehicle-0@localhost' from='main-manager@localhost/forged' "
                  "type='subscribe'/>")
        out.subscribe_from = str(await asyncio.wait_for(subscribed, WAIT))
        disco = _on_id(self.attacker, "disco-1")
        self.send("<iq type='get' to='localhost' id='disco-1' "
                  "from='main-manager@localhost/forged'>"
                  "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        out.disco_to = str((await asyncio.wait_for(disco, WAIT))["to"])

    async def foreign_domains(self) -> None:
        """Bounced, no connection out; our own domain in capitals is still ours."""
        port = self.server.server_port
        assert port is not None
        with socket.socket() as trap:  # where pyjabber would connect for 127.0.0.2
            trap.bind(("127.0.0.2", port))
            trap.listen()
            trap.setblocking(False)
            for mid, to in FOREIGN.items():
                bounced = _on_id(self.attacker, mid)
                self.send(f"<message to='{to}' id='{mid}' type='chat'><body>{mid}</body>"
                          "</message>")
                error = (await asyncio.wait_for(bounced, WAIT))["error"]
                self.out.bounces[mid] = str(error["condition"])
            self.send("<message to='vehicle-0@LOCALHOST' type='chat'><body>upper</body>"
                      "</message>")
            # also a round trip through the server after the bounces
            self.out.received["upper"] = await _next(self.inbox, "upper")
            try:
                trap.accept()[0].close()
                self.out.s2s_accepted = True
            except BlockingIOError:
                self.out.s2s_accepted = False

    async def inbound_s2s(self) -> None:
        port = self.server.server_port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            self.out.inbound_s2s_closed = await asyncio.wait_for(reader.read(), WAIT) == b""
        except ConnectionResetError:
            self.out.inbound_s2s_closed = True
        finally:
            writer.close()

    async def limits(self) -> None:
        """Each case costs its sender the stream; the others keep being served."""
        out, to = self.out, "<message to='vehicle-0@localhost'>"
        cases = {
            "one-read": f"{to}<body>{'A' * (LIMIT + 1024)}</body></message>",
            "many-reads": f"{to}<body>{'B' * 4 * 1024 * 1024}",  # never finished
            "deep": to + "<x>" * 40 + "</x>" * 40 + "</message>",
        }
        for (case, raw), agent in zip(cases.items(), self.spare.values(), strict=True):
            out.refused_streams[case] = await _stream_error_after(agent, raw)
        under = "C" * (LIMIT - 1024)
        self.send(f"{to}<body>{under}</body></message>")
        out.received["just-under"] = await _next(self.inbox, under)
        self.send(f"{to}<body>after</body></message>")
        out.received["after"] = await _next(self.inbox, "after")

    async def registration(self) -> None:
        """No key, the client key used for a fleet name, the fleet key."""
        errors, fleet = self.out.registration_errors, self.fleet
        assert fleet.accounts is not None
        errors["no-key"] = await _try_register(self.keyless, "vehicle-7", "guess")
        wrong_scope = account_password(fleet.accounts.client, "vehicle-7")
        errors["client-key-for-vehicle"] = await _try_register(
            self.keyless, "vehicle-7", wrong_scope)
        errors["fleet-key"] = await _try_register(fleet, "vehicle-7", "")


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    run_dir: Path = tmp_path_factory.mktemp("forgery")
    secret = "0123456789abcdef-e2e-secret"
    with EmbeddedXmppServer(run_dir, max_stanza_bytes=LIMIT, secret=secret) as server:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().replace(b"\0", b" ")
        result = run(Scene(server).play())
    result.cmdline, result.secret = cmdline.decode(), secret
    result.log = server.log_path.read_text()
    yield result


def test_forged_message_senders_are_replaced_by_the_real_one(outcome: Outcome) -> None:
    assert "forge" not in outcome.failed, outcome.failed
    assert outcome.attacker.startswith("passenger-evil@localhost/")
    for body in FORGED:
        # what fleetbid's receivers compare against the Directory: not the MainManager
        assert outcome.received[body] == outcome.attacker, body
    assert "wrote from='main-manager@localhost/forged'" in outcome.log


def test_forged_presence_and_iq_senders_are_replaced(outcome: Outcome) -> None:
    assert "forge" not in outcome.failed, outcome.failed
    assert outcome.subscribe_from.partition("/")[0] == "passenger-evil@localhost"
    assert outcome.disco_to == outcome.attacker


def test_other_domains_bounce_and_no_s2s_connection_is_opened(outcome: Outcome) -> None:
    assert "foreign_domains" not in outcome.failed, outcome.failed
    assert outcome.bounces == {mid: "remote-server-not-found" for mid in FOREIGN}
    assert outcome.s2s_accepted is False
    assert outcome.received["upper"] == outcome.attacker  # LOCALHOST is this server
    assert "refused to open a server-to-server" not in outcome.log  # nothing even queued
    assert "Remote server" not in outcome.log  # pyjabber's s2s worker never ran


def test_inbound_s2s_connections_are_closed(outcome: Outcome) -> None:
    assert "inbound_s2s" not in outcome.failed, outcome.failed
    assert outcome.inbound_s2s_closed
    assert "closed an inbound server-to-server connection" in outcome.log


def test_oversized_and_deep_stanzas_close_the_stream_others_keep_working(
    outcome: Outcome,
) -> None:
    assert "limits" not in outcome.failed, outcome.failed
    assert outcome.refused_streams == {
        "one-read": "policy-violation", "many-reads": "policy-violation",
        "deep": "policy-violation",
    }
    assert outcome.log.count("policy-violation, closed the stream") == 3
    assert outcome.received["just-under"] == outcome.attacker
    assert outcome.received["after"] == outcome.attacker


def test_registration_needs_the_key_of_the_names_scope(outcome: Outcome) -> None:
    assert "registration" not in outcome.failed, outcome.failed
    assert outcome.registration_errors == {
        "no-key": "refused", "client-key-for-vehicle": "refused",
        "fleet-key": "",
    }
    assert outcome.log.count("refused registration of 'vehicle-7'") == 2


def test_secret_is_not_on_the_server_command_line(outcome: Outcome) -> None:
    assert outcome.cmdline and outcome.secret not in outcome.cmdline

"""Unit tests of the embedded server's guards (no server process; see test_e2e_forgery.py).

pyjabber's own classes are used where the guards patch them, with a fake transport and a
minimal AppConfig in place of a running server.
"""

from __future__ import annotations

import asyncio
import os
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from loguru import logger
from pyjabber import AppConfig

from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.platform import server_guard as guard
from fleetbid.platform import stanza_limit
from fleetbid.platform.accounts import (
    AccountKeyError,
    AccountKeys,
    account_password,
    registration_allowed,
    scope_key,
)
from fleetbid.platform.xmpp_agent import account_password as agent_password
from fleetbid.platform.xmpp_server import (
    DEFAULT_MAX_STANZA_BYTES,
    EmbeddedXmppServer,
    XmppEndpoint,
)
from fleetbid.protocol import codec
from fleetbid.service.state import ServeState, read_state, write_state

SECRET = "unit-test-secret"


# -- accounts ----------------------------------------------------------------------------------
def test_registration_accepts_only_the_password_derived_for_that_name() -> None:
    keys = AccountKeys.from_master(SECRET)
    for name in ("vehicle-7", "main-manager", "passenger-abc", "complainant-1"):
        good = keys.password_for(name)
        assert registration_allowed(SECRET, name, good)
        assert not registration_allowed(SECRET, name, good.upper())
        assert not registration_allowed(SECRET, name + "x", good)
        assert not registration_allowed("other-secret", name, good)
    assert not registration_allowed(SECRET, "vehicle-7", "")


def test_client_key_cannot_derive_fleet_passwords() -> None:
    client = AccountKeys.from_master(SECRET).for_clients()
    assert client.fleet is None
    assert registration_allowed(SECRET, "passenger-x", client.password_for("passenger-x"))
    with pytest.raises(AccountKeyError, match="main-manager"):
        client.password_for("main-manager")
    # nor by using the client key directly on a fleet name
    assert not registration_allowed(SECRET, "vehicle-7", account_password(client.client,
                                                                          "vehicle-7"))
    assert scope_key(SECRET, "client") != scope_key(SECRET, "fleet")


def test_keys_never_show_in_reprs() -> None:
    keys = AccountKeys.from_master(SECRET)
    endpoint = XmppEndpoint("127.0.0.1", 5222, "localhost", True, keys)
    for text in (repr(keys), repr(endpoint), str(endpoint)):
        assert keys.client not in text and str(keys.fleet) not in text and SECRET not in text


def test_agent_passwords_derived_on_the_embedded_server_random_elsewhere() -> None:
    keys = AccountKeys.from_master(SECRET)
    embedded = XmppEndpoint("127.0.0.1", 5222, "localhost", True, keys)
    # replicas of one manager pass their shared password: they all derive the same one
    assert agent_password(embedded, "auction-0", "shared") == keys.password_for("auction-0")
    assert agent_password(embedded, "Vehicle-7") == keys.password_for("vehicle-7")  # nodeprep
    external = XmppEndpoint("10.0.0.5", 5222, "fleet.local", False)
    assert agent_password(external, "auction-0", "shared") == "shared"
    assert agent_password(external, "v") != agent_password(external, "v")


def test_serve_state_holds_only_the_client_key_and_is_private(tmp_path: Path) -> None:
    keys = AccountKeys.from_master(SECRET)
    endpoint = XmppEndpoint("127.0.0.1", 5222, "localhost", True, keys)
    directory = Directory("main-manager@localhost", ("auction-0@localhost",), (),
                          frozenset({"vehicle-0@localhost"}))
    path = tmp_path / "serve.json"
    write_state(path, ServeState.describe(RunConfig(vehicles=1), endpoint, directory, 1.0, "m"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(keys.fleet) not in path.read_text() and SECRET not in path.read_text()
    client = read_state(path).endpoint().accounts
    assert client == keys.for_clients()
    external = XmppEndpoint("10.0.0.5", 5222, "fleet.local", False)
    write_state(path, ServeState.describe(RunConfig(vehicles=1), external, directory, 1.0, "m"))
    assert read_state(path).endpoint().accounts is None


# -- server options ----------------------------------------------------------------------------
def test_default_stanza_limit_carries_every_body_the_protocol_accepts() -> None:
    assert DEFAULT_MAX_STANZA_BYTES >= codec.MAX_BODY_BYTES + 16 * 1024
    with pytest.raises(ValueError, match="max_stanza_bytes"):
        EmbeddedXmppServer("unused", max_stanza_bytes=100)


# -- from stamping and routing -----------------------------------------------------------------
class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def get_extra_info(self, _key: str) -> tuple[str, int]:
        return ("127.0.0.1", 4242)

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


@pytest.fixture
def app_config() -> Iterator[None]:
    before = AppConfig.app_config
    AppConfig.app_config = SimpleNamespace(  # type: ignore[assignment]
        host="localhost", ip=["127.0.0.1", None], verbose=False, plugins=[]
    )
    logger.disable("pyjabber")  # its debug lines echo every byte received
    yield
    logger.enable("pyjabber")
    AppConfig.app_config = before


def test_stamp_sender_overwrites_any_claim() -> None:
    for claimed in ("main-manager@localhost/forged", "vehicle-1@localhost", "localhost", None):
        el = ET.Element("{jabber:client}message", {"to": "vehicle-0@localhost"})
        if claimed is not None:
            el.set("from", claimed)
        guard.stamp_sender(el, "passenger-x@localhost/r1")
        assert el.get("from") == "passenger-x@localhost/r1"


def test_split_jid_matches_what_pyjabber_can_parse() -> None:
    assert guard.split_jid("a@b/c") == ("a", "b", "c")
    assert guard.split_jid("a@b") == ("a", "b", "")
    for bad in (None, "", "localhost", "a@b@c", "@b", "a@", "a/x@b", "a@b/c/d"):
        assert guard.split_jid(bad) is None, bad


@pytest.mark.usefixtures("app_config")
def test_routing_refusal_keeps_messages_on_this_server() -> None:
    def refusal(to: str | None) -> tuple[str | None, str | None]:
        el = ET.Element("{jabber:client}message", {} if to is None else {"to": to})
        return guard.routing_refusal(el), el.get("to")

    assert refusal("vehicle-0@localhost/r") == (None, "vehicle-0@localhost/r")
    assert refusal("vehicle-0@127.0.0.1") == (None, "vehicle-0@127.0.0.1")
    assert refusal("vehicle-0@LocalHost/r") == (None, "vehicle-0@localhost/r")
    assert refusal("someone@127.0.0.2")[0] == "remote-server-not-found"
    assert refusal("someone@elsewhere.example")[0] == "remote-server-not-found"
    assert refusal("vehicle-0@localhost.evil")[0] == "remote-server-not-found"
    assert refusal(None)[0] == "jid-malformed"
    assert refusal("a@b@localhost")[0] == "jid-malformed"


def test_bounce_answers_the_sender_but_never_an_error() -> None:
    transport = FakeTransport()
    el = ET.Element("message", {"to": "x@elsewhere", "from": "p@localhost/r", "id": "m1"})
    guard.bounce(transport, el, "remote-server-not-found")
    reply = ET.fromstring(transport.out[0])
    assert (reply.get("type"), reply.get("to"), reply.get("from"), reply.get("id")) == (
        "error", "p@localhost/r", "x@elsewhere", "m1")
    assert reply.find("error/{urn:ietf:params:xml:ns:xmpp-stanzas}remote-server-not-found") \
        is not None
    el.set("type", "error")
    guard.bounce(transport, el, "remote-server-not-found")
    assert len(transport.out) == 1


def test_iq_error_is_a_not_allowed_stanza_error() -> None:
    iq = ET.fromstring(guard.iq_error("r1", "not-allowed"))
    assert (iq.get("type"), iq.get("id")) == ("error", "r1")
    assert iq.find("error/{urn:ietf:params:xml:ns:xmpp-stanzas}not-allowed") is not None


def test_vouch_patch_stamps_then_hands_over_or_bounces(app_config: None) -> None:
    from pyjabber.stream.handlers.StanzaHandler import StanzaHandler

    seen: list[ET.Element] = []

    async def original(self: Any, element: ET.Element) -> None:
        seen.append(element)

    saved = StanzaHandler.feed
    StanzaHandler.feed = original  # type: ignore[method-assign]
    try:
        guard.vouch_for_senders()
        handler = SimpleNamespace(_jid="passenger-x@localhost/r1", _transport=FakeTransport())
        stanzas = [
            ET.fromstring("<message xmlns='jabber:client' to='vehicle-0@localhost' "
                          "from='main-manager@localhost/forged'/>"),
            ET.fromstring("<iq xmlns='jabber:client' type='get' to='localhost' "
                          "from='main-manager@localhost'/>"),
            ET.fromstring("<presence xmlns='jabber:client' to='vehicle-0@localhost' "
                          "type='subscribe' from='vehicle-1@localhost'/>"),
            ET.fromstring("<message xmlns='jabber:client' to='x@elsewhere.example'/>"),
        ]
        for el in stanzas:
            asyncio.run(StanzaHandler.feed(handler, el))
    finally:
        StanzaHandler.feed = saved  # type: ignore[method-assign]
    assert [el.get("from") for el in seen] == ["passenger-x@localhost/r1"] * 3
    assert len(seen) == 3 and len(handler._transport.out) == 1  # the foreign one bounced


def test_registration_patch_refuses_without_the_derived_password() -> None:
    from pyjabber.features.SASL.SASL import SASL

    reached: list[str] = []

    async def original(self: Any, element: ET.Element) -> None:
        reached.append(element.get("id", ""))

    def register(iq_id: str, user: str, password: str) -> ET.Element:
        return ET.fromstring(
            f"<iq xmlns='jabber:client' type='set' id='{iq_id}'>"
            f"<query xmlns='jabber:iq:register'><username>{user}</username>"
            f"<password>{password}</password></query></iq>")

    keys = AccountKeys.from_master(SECRET)
    saved = SASL.handle_iq
    try:
        for secret in (SECRET, None):
            SASL.handle_iq = original  # type: ignore[method-assign]
            guard.restrict_registration(secret)
            sasl = SimpleNamespace(_transport=FakeTransport(), _peer=("127.0.0.1", 1))
            for el in (register("good", "vehicle-7", keys.password_for("vehicle-7")),
                       register("guess", "vehicle-7", "hunter2"),
                       register("scope", "vehicle-7", account_password(keys.client, "vehicle-7")),
                       ET.fromstring("<iq xmlns='jabber:client' type='get' id='form'>"
                                     "<query xmlns='jabber:iq:register'/></iq>")):
                asyncio.run(SASL.handle_iq(sasl, el))
            refused = [ET.fromstring(b).get("id") for b in sasl._transport.out]
            if secret:
                assert reached == ["good", "form"] and refused == ["guess", "scope"]
            else:
                assert reached == ["good", "form", "form"]  # nobody registers without a secret
    finally:
        SASL.handle_iq = saved  # type: ignore[method-assign]


# -- stanza limits -----------------------------------------------------------------------------
class Recorder:
    """Stands in for pyjabber's QueueBridge: what the parser would hand on for routing."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def put(self, element: ET.Element) -> None:
        self.tags.append(element.tag.rpartition("}")[2])


async def _feed(chunks: list[bytes], limit: int = 2048) -> tuple[FakeTransport, list[str]]:
    stanza_limit.install_parser()
    protocol = stanza_limit.make_client_protocol("jabber:client", 0, limit)
    transport = FakeTransport()
    protocol.connection_made(transport)
    handler = protocol._xml_parser.getContentHandler()
    handler.cancel_queue_bridge()
    recorder = Recorder()
    handler._stream_negotiator = recorder
    for chunk in chunks:
        protocol.data_received(chunk)
    return transport, recorder.tags


OPEN = (b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='localhost'>")


def _message(body_bytes: int) -> bytes:
    return b"<message to='a@localhost'><body>" + b"x" * body_bytes + b"</body></message>"


@pytest.mark.usefixtures("app_config")
@pytest.mark.parametrize(
    ("name", "chunks", "routed", "refused"),
    [
        ("small ones pass", [OPEN, _message(10), _message(1500) * 3], 5, False),
        ("whole in one read", [OPEN, _message(10), _message(5000), _message(10)], 2, True),
        ("unfinished, many reads", [OPEN] + [b"<message><body>" + b"y" * 100_000] * 40, 1, True),
        ("a huge start tag", [OPEN, b"<message a='" + b"z" * 200_000], 1, True),
        ("nested", [OPEN, b"<message>" + b"<x>" * 40 + b"</x>" * 40 + b"</message>"], 1, True),
        ("split everywhere", [OPEN] + [bytes([c]) for c in _message(1000) * 2], 3, False),
    ],
)
def test_stanza_limit(name: str, chunks: list[bytes], routed: int, refused: bool) -> None:
    transport, tags = asyncio.run(_feed(chunks))
    assert len(tags) == routed, (name, tags)
    assert transport.closed is refused, name
    assert (stanza_limit.POLICY_VIOLATION in transport.out) is refused, name


@pytest.mark.usefixtures("app_config")
def test_inbound_s2s_is_closed_before_reading() -> None:
    transport = FakeTransport()
    guard.RefuseConnection().connection_made(transport)  # type: ignore[arg-type]
    assert transport.closed and transport.out == []


def test_secret_reaches_the_server_child_only_through_its_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    launched: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_popen(cmd: list[str], **kwargs: Any) -> None:
        launched.update(cmd=cmd, env=kwargs["env"])
        raise Stop

    monkeypatch.setattr("subprocess.Popen", fake_popen)
    server = EmbeddedXmppServer(tmp_path, secret=SECRET, max_stanza_bytes=4096)
    with pytest.raises(Stop):
        server._launch(1, 2)
    assert SECRET not in " ".join(launched["cmd"])
    assert launched["env"]["FLEETBID_XMPP_SECRET"] == SECRET
    assert "FLEETBID_XMPP_SECRET" not in os.environ
    assert launched["cmd"][-2:] == ["--max-stanza-bytes", "4096"]
    with pytest.raises(Stop):
        EmbeddedXmppServer(tmp_path, open_registration=True)._launch(1, 2)
    assert launched["cmd"][-1] == "--open-registration"
    assert len(launched["env"]["FLEETBID_XMPP_SECRET"]) == 64  # a fresh secret per server


@pytest.mark.usefixtures("app_config")
def test_a_lost_connection_leaves_the_peer_table() -> None:
    """pyjabber dropped a client from its peer table only when it ended its stream politely:
    every stream lost otherwise (closed on bad XML, client killed) stayed, with its transport
    and parser (the soak's server grew by each; docs/soak.md)."""
    from pyjabber.network.ConnectionManager import ConnectionManager

    async def scenario() -> tuple[bool, bool, bool]:
        stanza_limit.install_parser()
        protocol = stanza_limit.make_client_protocol("jabber:client", 3600, 2048)
        transport = FakeTransport()
        protocol.connection_made(transport)
        peer = transport.get_extra_info("peername")
        registered = peer in ConnectionManager()._peerList
        protocol.data_received(OPEN + b"<message>\x00</message>")  # not XML: closed
        protocol.connection_lost(None)
        return registered, transport.closed, peer in ConnectionManager()._peerList

    assert asyncio.run(scenario()) == (True, True, False)

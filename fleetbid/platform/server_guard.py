"""What the embedded pyjabber server enforces on top of pyjabber 0.4.5 (see docs/security.md).

Installed by `_server_main` in the server child process, before the server is built:

* the server vouches for senders: every stanza a client sends gets `from` = the client's
  authenticated full JID, whatever the client wrote (pyjabber only filled in a missing one);
* in-band registration only with a password derived from the run's secret (accounts.py);
* no server-to-server traffic: a message to another domain bounces with
  remote-server-not-found, no outbound connection is ever opened, inbound s2s connections
  are closed at once;
* stanza size and depth limits (stanza_limit.py);
* requests per passenger account per minute to the MainManager (rate_limit.py).

pyjabber offers no hooks for any of this, so these functions patch its classes, like
`_server_main._speed_up_routing` does; they are written against pyjabber 0.4.5.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import xml.etree.ElementTree as ET
from typing import Any

from loguru import logger

from fleetbid.core.text import loggable
from fleetbid.platform.accounts import registration_allowed
from fleetbid.platform.client_accounts import ClientAccounts
from fleetbid.platform.rate_limit import RequestLimiter
from fleetbid.platform.stanza_limit import LOG_TAG, install_parser, make_client_protocol

_CLIENT = "jabber:client"
_STANZAS = frozenset(f"{{{_CLIENT}}}{tag}" for tag in ("message", "presence", "iq"))
_MESSAGE = f"{{{_CLIENT}}}message"
_REGISTER = "jabber:iq:register"
_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def install(secret: str | None, max_stanza_bytes: int, *, open_registration: bool = False,
            limiter: RequestLimiter | None = None, accounts: ClientAccounts | None = None
            ) -> None:
    """Apply every guard (once per process: the server child calls it before building the
    server). `open_registration` leaves pyjabber's registration as it is."""
    vouch_for_senders(limiter)
    if not open_registration:
        restrict_registration(secret)
    disable_s2s(max_stanza_bytes, accounts)


# -- senders -----------------------------------------------------------------------------------
def vouch_for_senders(limiter: RequestLimiter | None = None) -> None:
    from pyjabber.stream.handlers.StanzaHandler import StanzaHandler

    original = StanzaHandler.feed

    async def feed(self: Any, element: ET.Element) -> None:
        # Other tags fall through: pyjabber closes the stream on them.
        if element.tag in _STANZAS:
            stamp_sender(element, str(self._jid))
            refusal = routing_refusal(element) if element.tag == _MESSAGE else None
            if refusal is not None:
                bounce(self._transport, element, refusal)
                return
            if element.tag == _MESSAGE and limiter is not None and over_limit(limiter, element):
                bounce(self._transport, element, "policy-violation", limiter.reason())
                return
        await original(self, element)

    StanzaHandler.feed = feed  # type: ignore[method-assign]


def stamp_sender(element: ET.Element, sender: str) -> None:
    """Overwrite `from` with the authenticated full JID (logged if it claimed someone else).

    Overwriting rather than refusing: an honest client that writes its bare JID, or none,
    keeps working, and a forger's stanza still arrives, under its own name, so a receiver
    sees (and can refuse) who really sent it.
    """
    claimed = element.attrib.get("from")
    if claimed is not None and claimed.partition("/")[0] != sender.partition("/")[0]:
        logger.warning(f"{LOG_TAG}: {sender} wrote from='{loggable(claimed)}'; stamped {sender}")
    element.attrib["from"] = sender


def split_jid(text: str | None) -> tuple[str, str, str] | None:
    """(local, domain, resource) for what pyjabber's JID parser accepts (user@domain[/res])."""
    if not text or text.count("@") != 1:
        return None
    local, rest = text.split("@")
    if not local or "/" in local or rest.count("/") > 1:
        return None
    domain, _, resource = rest.partition("/")
    return (local, domain, resource) if domain else None


def routing_refusal(element: ET.Element) -> str | None:
    """None if the message is for a user of this server (normalizing the domain's case),
    else the stanza error condition to bounce it with."""
    from pyjabber import AppConfig

    config = AppConfig.app_config
    parts = split_jid(element.attrib.get("to"))
    if parts is None:
        return "jid-malformed"  # pyjabber would raise and stop serving this connection
    local, domain, resource = parts
    if domain == config.host or domain in {ip for ip in config.ip if ip}:
        return None
    if domain.lower() == config.host.lower():  # domains are case-insensitive (RFC 7622)
        element.attrib["to"] = f"{local}@{config.host}" + (f"/{resource}" if resource else "")
        return None
    # pyjabber would queue it and open a server-to-server connection to `domain`.
    return "remote-server-not-found"


def over_limit(limiter: RequestLimiter, element: ET.Element) -> bool:
    """Count a message from a client account to the MainManager; True when over the limit.
    Runs after routing_refusal, so `to` is a well-formed JID of this domain."""
    sender = split_jid(element.attrib.get("from"))
    to = split_jid(element.attrib.get("to"))
    if sender is None or to is None or not limiter.counts(sender[0], to[0]):
        return False
    return not limiter.allow(f"{sender[0]}@{sender[1]}")


def bounce(transport: Any, element: ET.Element, condition: str, text: str = "") -> None:
    """Answer `element` with a stanza error (never an error with an error) and log it.

    A flood is logged once per 100 refusals (the log must not grow with the flood)."""
    sender, to = element.attrib.get("from", ""), element.attrib.get("to", "")
    _BOUNCES[condition] = _BOUNCES.get(condition, 0) + 1
    if _BOUNCES[condition] % 100 == 1:
        logger.warning(f"{LOG_TAG}: {condition} (#{_BOUNCES[condition]}): "
                       f"{loggable(sender)} sent a message to '{loggable(to)}'")
    if element.attrib.get("type") == "error" or transport is None:
        return
    reply = ET.Element("message", {"type": "error", "to": sender})
    if to:
        reply.set("from", to)
    if "id" in element.attrib:
        reply.set("id", element.attrib["id"])
    error = ET.SubElement(reply, "error", {"type": "cancel"})
    ET.SubElement(error, condition, {"xmlns": _STANZA_ERRORS})
    if text:
        ET.SubElement(error, "text", {"xmlns": _STANZA_ERRORS}).text = text
    transport.write(ET.tostring(reply))


_BOUNCES: dict[str, int] = {}  # stanza errors sent, per condition (for the log's sampling)


# -- registration ------------------------------------------------------------------------------
def restrict_registration(secret: str | None) -> None:
    """Accept an in-band registration only with the password derived from `secret`.

    Without a secret nobody can register. Accounts already registered are untouched:
    pyjabber answers `conflict` for them whatever the password.
    """
    from pyjabber.features.SASL.SASL import SASL

    original = SASL.handle_iq

    async def handle_iq(self: Any, element: ET.Element) -> None:
        query = element.find(f"{{{_REGISTER}}}query")
        if element.attrib.get("type") == "set" and query is not None:
            user = query.findtext(f"{{{_REGISTER}}}username") or ""
            password = query.findtext(f"{{{_REGISTER}}}password") or ""
            if secret is None or not registration_allowed(secret, user, password):
                logger.warning(f"{LOG_TAG}: refused registration of '{loggable(user)}' "
                               f"from {self._peer}")
                self._transport.write(iq_error(element.attrib.get("id"), "not-allowed"))
                return
        await original(self, element)

    SASL.handle_iq = handle_iq  # type: ignore[method-assign]


def iq_error(iq_id: str | None, condition: str) -> bytes:
    iq = ET.Element("iq", {"type": "error"})
    if iq_id is not None:
        iq.set("id", iq_id)
    error = ET.SubElement(iq, "error", {"type": "cancel"})
    ET.SubElement(error, condition, {"xmlns": _STANZA_ERRORS})
    return ET.tostring(iq)


# -- server-to-server --------------------------------------------------------------------------
def disable_s2s(max_stanza_bytes: int, accounts: ClientAccounts | None = None) -> None:
    """No outbound s2s connection, inbound ones closed, client streams size-limited.

    pyjabber always binds its s2s listener (run_server exits if it cannot), so it stays,
    on 127.0.0.1 only, and every connection to it is closed as soon as it is accepted.
    """
    import pyjabber.server as pjs

    install_parser()
    pjs.server_connection_worker = refuse_server_connections  # type: ignore[assignment]
    pjs.XMLProtocol = functools.partial(  # type: ignore[misc,assignment]
        _make_protocol, make_client_protocol, max_stanza_bytes, accounts
    )


def _make_protocol(
    make_client: Any, max_stanza_bytes: int, accounts: ClientAccounts | None, namespace: str,
    connection_timeout: int,
) -> asyncio.Protocol:
    if namespace == _CLIENT:
        return make_client(namespace, connection_timeout, max_stanza_bytes, accounts)  # type: ignore[no-any-return]
    return RefuseConnection()


class RefuseConnection(asyncio.Protocol):
    """Inbound s2s: close at once, before reading a byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        logger.warning(f"{LOG_TAG}: closed an inbound server-to-server connection from {peer}")
        transport.close()


async def refuse_server_connections() -> None:
    """Stands in for pyjabber's server_connection_worker, which opened s2s connections.

    Nothing reaches its queue while vouch_for_senders bounces foreign messages; should
    anything, it is logged and dropped. Not reported back as a failed connection: pyjabber's
    handler for that reads a config captured before the server existed, raises, and so
    stops the whole server (seen here).
    """
    from pyjabber.queues.QueueManager import QueueName, get_queue

    servers = get_queue(QueueName.SERVERS)
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            host = await servers.get()
            logger.warning(f"{LOG_TAG}: refused to open a server-to-server connection "
                           f"to '{loggable(host)}'")

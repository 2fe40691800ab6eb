"""Stanza size and nesting limits for pyjabber 0.4.5's client streams.

pyjabber feeds every received byte to an incremental SAX parser that builds each stanza as
an ElementTree in memory, without any bound: a 30 MB message was built and forwarded.
Here the bytes are fed in slices and, after each slice, the bytes since the end of the last
complete top-level element (a stanza, or a negotiation element) are counted: beyond
`max_stanza_bytes` the stream is closed with a `policy-violation` stream error (RFC 6120
4.9.3.14) and nothing of that stanza is routed. So a client costs the server at most about
`max_stanza_bytes + _SLICE` of buffered stanza, whatever it sends.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from loguru import logger

_SLICE = 64 * 1024
# A fleetbid stanza nests 5 deep (stream, message, x, field, value); far deeper is an attack
# on ElementTree's recursive serializer.
MAX_DEPTH = 32
POLICY_VIOLATION = (
    b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    b"</stream:error></stream:stream>"
)
_PROTOCOL_MODULE = "pyjabber.network.protocols.XMLProtocol"


LOG_TAG = "fleetbid-guard"  # the tag of server_guard.py's lines too: one grep finds both


class StanzaRefused(Exception):
    """Raised inside the SAX callbacks: unwinds the parser before anything is routed."""


def install_parser() -> None:
    """Make pyjabber's client protocol build its streams' parsers from LimitedXMLParser."""
    import importlib

    importlib.import_module(_PROTOCOL_MODULE)
    sys.modules[_PROTOCOL_MODULE].XMLParser = _limited_parser_class()  # type: ignore[attr-defined]


def make_client_protocol(namespace: str, connection_timeout: int, max_stanza_bytes: int,
                         accounts: Any = None) -> Any:
    """`accounts`: a client_accounts.ClientAccounts told of every closed connection."""
    return _limited_protocol_class()(namespace, connection_timeout, max_stanza_bytes, accounts)


@functools.cache
def _limited_parser_class() -> type:
    from pyjabber.network.parsers.XMLParser import XMLParser

    class LimitedXMLParser(XMLParser):  # type: ignore[misc]
        """pyjabber's SAX handler, also noting where the last top-level element ended."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.stanza_start = 0  # parser byte offset after the last complete element

        def startElementNS(self, name: Any, qname: Any, attrs: Any) -> None:  # noqa: N802
            if len(self._stack) >= MAX_DEPTH:
                raise StanzaRefused(f"elements nested more than {MAX_DEPTH} deep")
            if not self._stack:  # a stream opens (again after TLS and SASL)
                self.stanza_start = self._protocol.byte_index()
            super().startElementNS(name, qname, attrs)

        def endElementNS(self, name: Any, qname: Any) -> None:  # noqa: N802
            if len(self._stack) == 2:  # a top-level element closes: check before routing
                size = self._protocol.byte_index() - self.stanza_start
                if size > self._protocol.max_stanza_bytes:
                    limit = self._protocol.max_stanza_bytes
                    raise StanzaRefused(f"a stanza of {size} bytes, over the {limit} limit")
            super().endElementNS(name, qname)
            if len(self._stack) == 1:
                self.stanza_start = self._protocol.byte_index()

    return LimitedXMLParser


@functools.cache
def _limited_protocol_class() -> type:
    from pyjabber.network.protocols.XMLProtocol import XMLProtocol

    class LimitedXMLProtocol(XMLProtocol):  # type: ignore[misc]
        """pyjabber's c2s protocol, feeding its parser in slices and counting the bytes."""

        def __init__(self, namespace: str, connection_timeout: int, max_stanza_bytes: int,
                     accounts: Any = None):
            super().__init__(namespace, connection_timeout)
            self.max_stanza_bytes = max_stanza_bytes
            self.accounts = accounts
            self._fed = 0  # bytes given to the parser; same origin as its CurrentByteIndex
            self._refused = False

        def byte_index(self) -> int:
            # The expat parser inside xml.sax's ExpatParser: offset of the current event.
            return int(self._xml_parser._parser.CurrentByteIndex)

        def data_received(self, data: bytes) -> None:
            for start in range(0, len(data), _SLICE):
                transport = self._transport
                if self._refused or self._xml_parser is None or transport is None \
                        or transport.is_closing():  # e.g. pyjabber closed it on bad XML
                    return
                piece = data[start:start + _SLICE]
                try:
                    super().data_received(piece)
                except StanzaRefused as exc:
                    self._refuse(str(exc))
                    return
                self._fed += len(piece)
                if self._xml_parser is None:  # connection lost meanwhile
                    return
                pending = self._fed - self._xml_parser.getContentHandler().stanza_start
                if pending > self.max_stanza_bytes:
                    self._refuse(f"an unfinished stanza already over the "
                                 f"{self.max_stanza_bytes} bytes limit")
                    return

        def connection_lost(self, exc: Exception | None) -> None:
            peer, connections = self._peer, self._connection_manager
            client = connections._peerList.get(peer)
            jid = client.jid if client is not None else connections._orphan_jids.get(peer)
            try:
                super().connection_lost(exc)
            finally:
                forget_peer(connections, peer)
                if self.accounts is not None and jid is not None:
                    self.accounts.connection_closed(connections, jid)

        def _refuse(self, reason: str) -> None:
            self._refused = True
            who = self._connection_manager.get_jid(self._peer) or self._peer
            logger.warning(f"{LOG_TAG}: policy-violation, closed the stream of {who}: {reason}")
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.write(POLICY_VIOLATION)
                transport.close()

    return LimitedXMLProtocol


def forget_peer(connections: Any, peer: Any) -> None:
    """Drop a closed connection from pyjabber's ConnectionManager.

    pyjabber 0.4.5 removes a client only when it ends its stream politely
    (`</stream:stream>`); a connection that is simply lost (the server closed it on bad XML
    or an oversized stanza, the client was killed) stayed in the peer table for ever, with
    its TLS transport, parser and buffers: the soak's server grew with every hostile stream
    it closed (docs/soak.md). Attribute names as of pyjabber 0.4.5.
    """
    peers = getattr(connections, "_peerList", None)
    if isinstance(peers, dict):
        peers.pop(peer, None)
    orphans = getattr(connections, "_orphan_jids", None)
    if isinstance(orphans, dict):
        orphans.pop(peer, None)

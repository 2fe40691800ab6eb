"""The hostile side of `fleetbid soak`: one account that floods the MainManager with ride
requests, and one that sends malformed and hostile stanzas, both written as raw XML on the
agents' slixmpp stream (what any XMPP client could send), with every answer counted.
"""

from __future__ import annotations

import collections
import secrets
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from spade.behaviour import CyclicBehaviour

from fleetbid.platform.xmpp_agent import XmppAgent, stanza_xml
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m

_FORM_TYPE = ".//{jabber:x:data}field[@var='type']/{jabber:x:data}value"
_STANZA_ERRORS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


class _Drain(CyclicBehaviour):
    """Answers are counted on the stream (below); spade's copies are just dropped."""

    async def run(self) -> None:
        await self.receive(timeout=5)


class LoadClient(XmppAgent):
    """A client account (`passenger-...`: the only kind an outsider can hold) that writes raw
    stanzas and counts what comes back: stanza errors by condition, replies by type."""

    def __init__(self, role: str, endpoint: XmppEndpoint) -> None:
        super().__init__(f"passenger-soak-{role}-{secrets.token_hex(3)}", endpoint)
        self.answers: collections.Counter[str] = collections.Counter()
        self.sent_raw = 0
        self.add_behaviour(_Drain())

    async def setup(self) -> None:
        assert self.client is not None
        self.client.register_handler(
            Callback("soak-count", MatchXPath("{jabber:client}message"), self._count))

    def _count(self, stanza: Any) -> None:
        xml = stanza.xml
        if xml.get("type") == "error":
            error = xml.find("{jabber:client}error")
            names = [c.tag.replace(_STANZA_ERRORS, "") for c in (error if error is not None
                                                                  else [])]
            condition = next((n for n in names if n != "text"), "unknown")
            self.answers[f"error:{condition}"] += 1
            return
        kind = xml.find(_FORM_TYPE)
        if kind is not None and not (stanza["id"] or "").startswith("fleetbid-probe-"):
            self.answers[kind.text or "?"] += 1

    def write(self, raw: str) -> bool:
        """Send `raw`; False if the server has closed our stream."""
        if self.client is None or not self.client.is_connected():
            return False
        self.client.send_raw(raw)
        self.sent_raw += 1
        return True


def flood_request(client: LoadClient, to: str, node: str, n: int) -> None:
    """One well-formed ride request, as a passenger would send it."""
    body = m.RideRequest(request_id=f"flood-{client.name[-6:]}-{n}", source=node,
                         destination=node, requested_at=0.0)
    client.write(stanza_xml(codec.encode(to, body), str(client.jid)))


def hostile_stanzas(to: str, node: str, n: int) -> list[str]:
    """Stanzas the fleet must answer politely (not-understood/refuse) or the server bounce,
    without harm and without copying their text raw into a log."""
    # Log forgery: a newline, a C1 control (CSI: terminal escapes), a Unicode line separator
    # (all legal in XML 1.0, so they reach the agents).
    control = "line\nforged 2026-01-01 ERROR fleetbid: \u009b31mred\u009b0m\u2028end"

    def message(kind: str, body: str, target: str = to) -> str:
        fields = "".join(
            f'<field var={quoteattr(k)} type="text-single"><value>{escape(v)}</value></field>'
            for k, v in (("performative", "request"), ("protocol", codec.PROTOCOL),
                         ("ontology", codec.ONTOLOGY), ("type", kind),
                         ("conversation", f"hostile-{n}")))
        return (f'<message xmlns="jabber:client" to={quoteattr(target)} type="chat">'
                f'<body>{escape(body)}</body><x xmlns="jabber:x:data" type="form">'
                f"<title>spade:x:metadata</title>{fields}</x></message>")

    return [
        message("ride-request", "{'not': json"),  # malformed JSON
        message("ride-request", f'{{"request_id": "{"x" * 5000}", "source": "{node}"}}'),
        message("teleport", "{}"),  # unknown type
        message("ride-request", ET.tostring(ET.Element("a", {"b": control})).decode()),
        message("ride-request", f'{{"request_id": "h{n}", "source": "{control}", '
                                f'"destination": "{node}", "requested_at": 0}}'),
        message("bid", '{"auction_id": "nope", "bid": NaN, "eta_s": 1}'),
        message("ride-request", "{}", target=f"main-manager@evil{n}.example"),  # s2s: bounced
    ]


def stream_breaker(to: str) -> str:
    """A NUL is not XML: the server must close this client's stream, and only its."""
    return f'<message xmlns="jabber:client" to={quoteattr(to)}><body>nul \x00</body></message>'

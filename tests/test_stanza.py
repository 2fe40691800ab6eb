"""The direct stanza serializer writes what spade's own Message.prepare would."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slixmpp import ClientXMPP
from slixmpp.stanza import Message as SlixmppMessage
from spade.message import Message

from fleetbid.platform.xmpp_agent import stanza_xml


def parse(xml: str) -> Message:
    stanza = SlixmppMessage(xml=ET.fromstring(xml))
    return Message.from_node(stanza)


def test_direct_stanza_reads_back_like_spades() -> None:
    msg = Message(to="mm@localhost", sender="v1@localhost", body='{"a": "<&>\\"quoted\\""}',
                  metadata={"performative": "propose", "type": "bid", "odd": "x'y\"z<&>"})
    msg.thread = "t-1"
    ours = parse(stanza_xml(msg, "v1@localhost/res"))
    client = ClientXMPP("v1@localhost", "pw")
    theirs = Message.from_node(msg.prepare(client))
    for back in (ours, theirs):
        assert back.body == msg.body
        assert back.get_metadata("odd") == "x'y\"z<&>"
        assert back.get_metadata("performative") == "propose"
        assert back.thread == "t-1"
    assert str(ours.to) == "mm@localhost"
    assert str(ours.sender) == "v1@localhost/res"


def test_no_metadata_no_form() -> None:
    xml = stanza_xml(Message(to="a@d", body="hi"), "b@d/r")
    assert "jabber:x:data" not in xml
    assert parse(xml).body == "hi"

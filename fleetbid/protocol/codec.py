"""The codec: a body and its FIPA-ACL envelope to a SPADE message, and back (validated).

A message is a SPADE message whose metadata carries the envelope (`performative`,
`protocol`, `ontology`, `conversation` = auction id) plus `type`, the name of the body's
schema, and `mid`, a unique id receivers use to drop exact duplicates.
"""

from __future__ import annotations

import itertools
import secrets

import msgspec
from spade.message import Message

# Imported for their schemas: every Body subclass registers itself in SCHEMAS.
from fleetbid.protocol import law_messages, messages  # noqa: F401
from fleetbid.protocol.schema import ONTOLOGY, PROTOCOL, SCHEMAS, Body

_DECODERS = {name: msgspec.json.Decoder(cls) for name, cls in SCHEMAS.items()}
_ENCODER = msgspec.json.Encoder()
MAX_BODY_BYTES = 1024 * 1024  # an open-auction lists every idle vehicle of a cluster


# Every message carries a unique id ("mid"): receivers drop exact duplicates (a replicated
# AuctionManager's new leader re-sends its recent outputs with their original ids).
_MID_PREFIX = secrets.token_hex(4)
_MID_COUNTER = itertools.count()


def new_mid() -> str:
    return f"{_MID_PREFIX}.{next(_MID_COUNTER)}"


class ProtocolError(Exception):
    """A message that cannot be understood: answered with `not-understood`."""


def encode(
    to: str, body: Body, conversation: str | None = None, performative: str = "",
    mid: str | None = None,
) -> Message:
    """Build the SPADE message for `body` (performative defaults to the schema's first)."""
    performative = performative or body.PERFORMATIVES[0]
    if performative not in body.PERFORMATIVES:
        raise ValueError(f"{body.TYPE} cannot travel as {performative}")
    # An auction's messages travel in its conversation: the auction's or the batch's id.
    conv = conversation if conversation is not None else (
        getattr(body, "auction_id", "") or getattr(body, "batch_id", "") or "")
    metadata = {
        "performative": performative,
        "protocol": PROTOCOL,
        "ontology": ONTOLOGY,
        "conversation": conv,
        "type": body.TYPE,
        "mid": mid or new_mid(),
    }
    return Message(to=to, body=_ENCODER.encode(body).decode(), metadata=metadata)


def decode(msg: Message) -> Body:
    """Validate envelope and body; raise ProtocolError with a reason a human can act on."""
    kind = msg.get_metadata("type") or ""
    protocol = msg.get_metadata("protocol")
    if protocol != PROTOCOL:
        raise ProtocolError(f"unknown protocol {protocol!r}")
    if kind not in SCHEMAS:
        raise ProtocolError(f"unknown message type {kind!r}")
    schema = SCHEMAS[kind]
    performative = msg.get_metadata("performative") or ""
    if performative not in schema.PERFORMATIVES:
        raise ProtocolError(f"{kind} cannot travel as performative {performative!r}")
    raw = (msg.body or "").encode()
    if len(raw) > MAX_BODY_BYTES:
        raise ProtocolError(f"body of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        body = _DECODERS[kind].decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ProtocolError(f"invalid {kind} body: {exc}") from None
    conv = msg.get_metadata("conversation") or ""
    auction_id = getattr(body, "auction_id", None)
    if auction_id is not None and conv != auction_id:
        raise ProtocolError(f"conversation {conv!r} does not match auction_id {auction_id!r}")
    return body

"""Serve's join service: a node that holds a join token gets what `node --join STATE` reads
from the state and join files (the fleet's config and Directory, its clock epoch, the
fleet-scope account key, the managers' group key) and its slots, over one TCP exchange.

Why a TCP endpoint of serve and not XMPP: a node has no XMPP account before it holds the
fleet's key (the embedded server registers a name only with a password derived from it),
and no agent may talk to a JID outside the frozen Directory. The endpoint listens on the
address the XMPP server listens on, and only while serve runs with join or replica slots.

The exchange, newline-delimited JSON, every step with a timeout and a size bound:

    node -> serve  hello   {v, domain, token_id, nonce, vehicles, replica_slot}
    serve -> node  {nonce, proof}  or  {refused}   (domain, malformed, expired, used)
    node -> serve  {proof}
    serve -> node  {box}   or  {refused}           (wrong token, no free slot)

Both sides prove they know the whole token (HMAC-SHA256 over the transcript: the hello
and both nonces) without sending it, so an eavesdropper learns nothing it could replay, and
a node talks only to a serve that minted its token. The box is AES-256-GCM under a key
derived with HKDF-SHA256 from the token and both nonces (the `cryptography` package,
already a dependency): the fleet's keys never cross the LAN in the clear. Tokens are
compared with `hmac.compare_digest`; a refused exchange changes nothing, an accepted one
consumes the token and the slots it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetbid.service.join_token import JoinString, TokenBook, token_for, token_id_of
from fleetbid.service.state import ServeState, StateError, validate

VERSION = 1
STEP_TIMEOUT_S = 10.0
HELLO_LIMIT = 16 * 1024  # serve reads only small lines
BOX_LIMIT = 64 * 1024 * 1024  # a fleet's state: 10,000 join slots and their Directory


class JoinRefused(Exception):
    """The serve (or the node) refused the join; the message says why."""


@dataclass(frozen=True)
class Granted:
    """What a node gets: the serve's state with its join secrets, and its slots."""

    state: ServeState
    first_slot: int
    vehicles: int
    replica_slot: int | None


# -- the handshake's cryptography -------------------------------------------------------------
def transcript(hello: dict[str, Any], serve_nonce: str) -> bytes:
    return json.dumps(hello, sort_keys=True).encode() + b"|" + serve_nonce.encode()


def proof(token: str, side: str, text: bytes) -> str:
    return hmac.new(token.encode(), side.encode() + b"|" + text, hashlib.sha256).hexdigest()


def box_key(token: str, text: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=hashlib.sha256(text).digest(),
                info=b"fleetbid-join-box-v1").derive(token.encode())


def seal(token: str, text: bytes, payload: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return (nonce + AESGCM(box_key(token, text)).encrypt(
        nonce, json.dumps(payload).encode(), text)).hex()


def unseal(token: str, text: bytes, box: str) -> dict[str, Any]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = bytes.fromhex(box)
        plain = AESGCM(box_key(token, text)).decrypt(raw[:12], raw[12:], text)
        payload = json.loads(plain)
    except (ValueError, InvalidTag) as exc:
        raise JoinRefused(f"the serve's answer does not open: {exc or 'bad tag'}") from None
    if not isinstance(payload, dict):
        raise JoinRefused("the serve's answer is not a JSON object")
    return payload


async def read_json(reader: asyncio.StreamReader) -> dict[str, Any]:
    try:
        line = await asyncio.wait_for(reader.readline(), STEP_TIMEOUT_S)
    except TimeoutError:
        raise JoinRefused(f"no answer within {STEP_TIMEOUT_S:.0f} s") from None
    except (asyncio.LimitOverrunError, ValueError):
        raise JoinRefused("line too long") from None
    if not line:
        raise JoinRefused("the connection closed")
    try:
        value = json.loads(line)
    except ValueError:
        raise JoinRefused("not JSON") from None
    if not isinstance(value, dict):
        raise JoinRefused("not a JSON object")
    return value


async def write_json(writer: asyncio.StreamWriter, value: dict[str, Any]) -> None:
    writer.write(json.dumps(value).encode() + b"\n")
    await writer.drain()


# -- serve's side ----------------------------------------------------------------------------
class JoinService:
    """Listens for joining nodes; hands out join slots in order and replica slots by id.
    `state` is the serve's state with its join secrets (join_key among them)."""

    def __init__(self, state: ServeState, on_event: Callable[[str], None]) -> None:
        self.state, self.on_event = state, on_event
        self.tokens = TokenBook()
        self.next_slot = 0
        self.replicas_given: set[int] = set()
        self.server: asyncio.Server | None = None
        self.joined = 0

    async def start(self, host: str, port: int = 0) -> int:
        self.server = await asyncio.start_server(self.handle, host, port, limit=HELLO_LIMIT)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if peer else "?"
        try:
            granted = await self.exchange(reader, writer)
            self.on_event(f"node at {where} joined: {granted}")
        except JoinRefused as exc:
            self.on_event(f"join refused to {where}: {exc}")
            with contextlib.suppress(Exception):
                await write_json(writer, {"refused": str(exc)})
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.on_event(f"join from {where} broke off: {exc}")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def exchange(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> str:
        hello = await read_json(reader)
        token_id = hello.get("token_id")
        if hello.get("v") != VERSION:
            raise JoinRefused(f"unsupported join version {hello.get('v')!r} (this serve: "
                              f"{VERSION})")
        if hello.get("domain") != self.state.domain:
            raise JoinRefused(f"this serve's XMPP domain is {self.state.domain}, not "
                              f"{hello.get('domain')!r}")
        nonce = hello.get("nonce")
        if not isinstance(nonce, str) or len(nonce) != 64:
            raise JoinRefused("malformed hello: nonce")
        why = self.tokens.refusal(token_id)  # type: ignore[arg-type]
        if why is not None:
            raise JoinRefused(why)
        token = token_for(self.state.join_key, str(token_id))
        ours = secrets.token_hex(32)
        text = transcript(hello, ours)
        await write_json(writer, {"nonce": ours, "proof": proof(token, "serve", text)})
        answer = await read_json(reader)
        if not hmac.compare_digest(str(answer.get("proof", "")).encode(),
                                   proof(token, "node", text).encode()):
            raise JoinRefused("wrong join token")
        # No await from the checks to the grant: two nodes racing with one token get one.
        why = self.tokens.refusal(str(token_id))
        if why is not None:
            raise JoinRefused(why)
        first, count, replica = self.allocate(hello.get("vehicles"), hello.get("replica_slot"))
        self.tokens.consume(str(token_id))
        self.joined += 1
        payload = {"state": dataclasses.asdict(self.state), "first_slot": first,
                   "vehicles": count, "replica_slot": replica}
        await write_json(writer, {"box": seal(token, text, payload)})
        what = f"join slots {first}..{first + count - 1}" if count else "no vehicles"
        return what + (f", replica slot {replica}" if replica is not None else "")

    def allocate(self, vehicles: object, replica: object) -> tuple[int, int, int | None]:
        """The next free join slots (all that are left when `vehicles` is None) and the
        replica slot asked for; refused, changing nothing, if they are not free."""
        free = len(self.state.join_slots) - self.next_slot
        if vehicles is None:
            vehicles = free
        if not isinstance(vehicles, int) or isinstance(vehicles, bool) or vehicles < 0:
            raise JoinRefused("malformed hello: vehicles")
        if vehicles > free:
            raise JoinRefused(f"only {free} of the fleet's {len(self.state.join_slots)} "
                              f"join slots are free, not {vehicles}")
        slots = int((self.state.replica_group or {}).get("slots", 0))
        if replica is not None:
            if not isinstance(replica, int) or isinstance(replica, bool) \
                    or not 0 <= replica < slots:
                raise JoinRefused(f"replica slot {replica} is not among the fleet's {slots}")
            if replica in self.replicas_given:
                raise JoinRefused(f"replica slot {replica} was given to another node")
        if vehicles == 0 and replica is None:
            raise JoinRefused("nothing to run: no free join slot asked for, no replica slot")
        first = self.next_slot
        self.next_slot += vehicles
        if replica is not None:
            self.replicas_given.add(replica)
        return first, vehicles, replica


# -- the node's side -------------------------------------------------------------------------
async def fetch(join: JoinString, vehicles: int | None, replica_slot: int | None) -> Granted:
    """Join the serve of `join`: its state (with the join secrets) and this node's slots."""
    token = join.token
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(join.host, join.port, limit=BOX_LIMIT), STEP_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise JoinRefused(f"no join service at {join.host}:{join.port}: {exc}") from None
    try:
        hello = {"v": VERSION, "domain": join.domain, "token_id": token_id_of(token),
                 "nonce": secrets.token_hex(32), "vehicles": vehicles,
                 "replica_slot": replica_slot}
        await write_json(writer, hello)
        first = await read_json(reader)
        if "refused" in first:
            raise JoinRefused(str(first["refused"]))
        text = transcript(hello, str(first.get("nonce", "")))
        serve_knows = hmac.compare_digest(str(first.get("proof", "")).encode(),
                                          proof(token, "serve", text).encode())
        await write_json(writer, {"proof": proof(token, "node", text)})
        last = await read_json(reader)
        if "refused" in last:
            raise JoinRefused(str(last["refused"]))
        if not serve_knows:  # whoever answered did not mint this token
            raise JoinRefused(f"{join.host}:{join.port} could not prove it knows the token: "
                              "not the fleet's serve")
        payload = unseal(token, text, str(last.get("box", "")))
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    try:
        state = validate(payload.get("state"), "the serve's answer")  # type: ignore[arg-type]
        return Granted(state, int(payload["first_slot"]), int(payload["vehicles"]),
                       payload.get("replica_slot"))
    except (KeyError, TypeError, ValueError, StateError) as exc:
        raise JoinRefused(f"the serve's answer is incomplete: {exc}") from None

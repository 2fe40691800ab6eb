"""Join tokens and join strings: how a node joins knowing only host, port, domain and a token.

`fleetbid join-token` (on the serve's host, reading the serve's join file) mints a token
and prints a join string, `fleetbid://HOST:PORT/DOMAIN?token=TOKEN`, where HOST:PORT is the
serve's join service (service/join_channel.py) and DOMAIN its XMPP domain. A token is
`ID.EXPIRY.MAC`: a random id, its expiry (unix seconds) and an HMAC of both under the
serve's join key. So serve can check any token without having stored it (no token list to
keep in step with the minting command) and refuses a forged, expired or already used one.
Like kubeadm's bootstrap tokens, but single-use: serve remembers the ids it accepted.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

SCHEME = "fleetbid"
DEFAULT_TTL_S = 3600
_TOKEN = re.compile(r"^([0-9a-f]{16})\.([0-9]{1,12})\.([0-9a-f]{32})$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{16}\.[0-9]{1,12}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def new_join_key() -> str:
    return secrets.token_hex(32)


def _mac(join_key: str, token_id: str) -> str:
    return hmac.new(join_key.encode(), f"fleetbid-join-token:{token_id}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def mint(join_key: str, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + ttl_s)
    token_id = f"{secrets.token_hex(8)}.{expiry}"
    return f"{token_id}.{_mac(join_key, token_id)}"


def token_id_of(token: str) -> str:
    """The public part of a token (what a node names in its hello)."""
    match = _TOKEN.match(token)
    if match is None:
        raise ValueError("a join token looks like ID.EXPIRY.MAC (16 hex, digits, 32 hex)")
    return f"{match[1]}.{match[2]}"


def token_for(join_key: str, token_id: str) -> str:
    """The whole token serve would have minted with this id: the key of the handshake."""
    return f"{token_id}.{_mac(join_key, token_id)}"


@dataclass
class TokenBook:
    """Serve's side: which token ids may still be used. Nothing is stored per minted
    token; an id is remembered once accepted, so a replay is refused."""

    used: set[str] = field(default_factory=set)

    def refusal(self, token_id: str, now: float | None = None) -> str | None:
        """Why this id cannot join (None: it may, if the node proves the whole token)."""
        if not isinstance(token_id, str) or not _TOKEN_ID.match(token_id):
            return "malformed join token"
        if int(token_id.split(".", 1)[1]) <= (time.time() if now is None else now):
            return "the join token has expired: mint a new one with `fleetbid join-token`"
        if token_id in self.used:
            return "the join token was already used (tokens are single-use)"
        return None

    def consume(self, token_id: str) -> None:
        self.used.add(token_id)


@dataclass(frozen=True)
class JoinString:
    host: str
    port: int
    domain: str
    token: str = field(repr=False)

    def __str__(self) -> str:
        return f"{SCHEME}://{self.host}:{self.port}/{self.domain}?token={self.token}"


def parse_join_string(text: str) -> JoinString:
    """`fleetbid://HOST:PORT/DOMAIN?token=TOKEN` (ValueError with the reason otherwise)."""
    parts = urlsplit(text)
    if parts.scheme != SCHEME:
        raise ValueError(f"a join string starts with {SCHEME}://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("the join string's port must be a number 1..65535") from None
    if not host or port is None or not 0 < port < 65536:
        raise ValueError("the join string needs HOST:PORT (the serve's join service)")
    domain = parts.path.lstrip("/")
    if not _DOMAIN.match(domain):
        raise ValueError("the join string needs the XMPP domain: fleetbid://HOST:PORT/DOMAIN")
    tokens = parse_qs(parts.query).get("token", [])
    if len(tokens) != 1:
        raise ValueError("the join string needs one ?token=...")
    token_id_of(tokens[0])  # well-formed
    return JoinString(host, port, domain, tokens[0])


def join_target(text: str) -> JoinString | str:
    """`fleetbid node --join`: a join string, or the path of a state file (a usage error,
    exit 2, names what is wrong with a join string)."""
    if not text.startswith(f"{SCHEME}:"):
        return text
    try:
        return parse_join_string(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

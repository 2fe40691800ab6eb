"""A law: a TOML document validated against this schema, and its SHA-256 identity.

pydantic (strict, extra fields forbidden) validates the document: it reports every mistake
of a file at once, each with its location, which is what a law author needs; laws are loaded
a few times per run, never per message (see docs/decisions.md). A law is built in full or
not at all: `parse_law` returns a frozen `Law` or raises `LawError` listing the mistakes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fleetbid.protocol import messages as m

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Ratio = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]

# Message kinds that belong to an auction: what a law may name for auditing.
AUCTION_KINDS = frozenset({
    m.OpenAuction.TYPE, m.Participation.TYPE, m.AuctionPhase.TYPE, m.AuctionClosed.TYPE,
    m.GroupCall.TYPE, m.CallForBids.TYPE, m.Bid.TYPE,
    m.BidDeclined.TYPE, m.GroupBest.TYPE, m.Award.TYPE, m.AwardConfirmed.TYPE,
    m.AwardDeclined.TYPE, m.AuctionResult.TYPE, m.RideRequest.TYPE,
    m.RideAssigned.TYPE, m.RideUnserved.TYPE, m.PickedUp.TYPE, m.BidReceived.TYPE,
    "english-round", "outbid", "dutch-tick",
    # the batch auction (behaviours/batch_auction.py): its conversation is the batch id
    m.OpenBatch.TYPE, m.BatchCall.TYPE, m.BatchBid.TYPE, m.BatchGroupBids.TYPE,
    m.BatchAward.TYPE, m.BatchClosed.TYPE,
})


class LawError(ValueError):
    """A law document that cannot be used; the message lists every mistake found."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SealedFirstPrice(_Part):
    """Sealed bids; the best bid wins and the winner is paid its own bid."""

    type: Literal["sealed-first-price"]


class Vickrey(_Part):
    """Sealed second-price: the best bid wins, the winner is paid the second-best bid."""

    type: Literal["vickrey"]
    reserve: NonNeg = 0.0  # the price when nobody else bid


class English(_Part):
    """Open-cry rounds: each round every bidder but the leader may raise the standing bid."""

    type: Literal["english"]
    opening: Positive = 0.001  # the lowest first bid (bid units: 1/s)
    increment: Ratio = 0.1  # a raise beats the standing bid by at least this fraction
    max_rounds: Annotated[int, Field(ge=1, le=1000)] = 200


class Dutch(_Part):
    """Reverse descending clock: the bid asked falls (the time allowance offered rises) each
    tick until a vehicle accepts."""

    type: Literal["dutch"]
    start: Positive = 1.0  # the first clock value (bid units: 1/s)
    step: Ratio = 0.1  # the clock falls by this fraction per tick
    max_ticks: Annotated[int, Field(ge=1, le=1000)] = 200


AuctionRules = Annotated[SealedFirstPrice | Vickrey | English | Dutch,
                         Field(discriminator="type")]


class Eligibility(_Part):
    same_cluster: bool = True  # the vehicle must be in the pickup's cluster
    radius_m: Positive | None = None  # None: the run's --radius
    certified: bool = False  # bids must carry a valid certificate of the law's authority
    min_seats: Annotated[int, Field(ge=1, le=64)] = 1  # checked on the certificate
    wheelchair: bool = False  # checked on the certificate


class Certification(_Part):
    authority: Name = "certification-authority"
    lifetime_s: Positive = 86400.0  # simulated seconds
    renew: bool = True  # vehicles renew before expiry (never after a revocation)


class Audit(_Part):
    auditor: Name = "auditor"
    kinds: tuple[str, ...] = ()

    @field_validator("kinds")
    @classmethod
    def _known(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(kinds) - AUCTION_KINDS)
        if unknown:
            raise ValueError(f"unknown message kinds {unknown}; known: {sorted(AUCTION_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError("a message kind is listed twice")
        return tuple(sorted(kinds))  # order does not change the law, nor its hash


class Complaints(_Part):
    agent: Name = "complaints"


class Deadlines(_Part):
    patience_s: Positive | None = None  # None: the run's --patience
    bid_window_s: Positive | None = None  # None: the run's bidding window


class Law(_Part):
    name: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    version: Annotated[int, Field(ge=1)] = 1
    auction: AuctionRules
    eligibility: Eligibility = Eligibility()
    certification: Certification = Certification()
    audit: Audit = Audit()
    complaints: Complaints = Complaints()
    deadlines: Deadlines = Deadlines()

    def canonical(self) -> bytes:
        """Every field, defaults included, as sorted compact JSON: equal laws, equal bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False).encode()

    @property
    def hash(self) -> str:
        return law_hash(self)

    @property
    def kind(self) -> str:
        return self.auction.type


def law_hash(law: Law) -> str:
    """SHA-256 (hex) of the law's canonical form: its identity on the wire."""
    return hashlib.sha256(law.canonical()).hexdigest()


def parse_law(text: str, source: str = "<law>") -> Law:
    """Validate a TOML law document; raise LawError listing every mistake."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LawError(f"{source}: not valid TOML: {exc}") from None
    return law_from_dict(raw, source)


def law_from_dict(raw: Any, source: str = "<law>") -> Law:
    # TOML has no float-only literal for whole numbers: accept 30 where 30.0 is meant;
    # TOML arrays arrive as lists, the (frozen) law keeps tuples.
    try:
        return Law.model_validate(_ints_as_floats(raw))
    except ValidationError as exc:
        lines = [f"  - {_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise LawError(f"{source}: {len(lines)} mistake(s):\n" + "\n".join(lines)) from None


_FLOAT_FIELDS = {"reserve", "opening", "increment", "start", "step", "radius_m", "lifetime_s",
                 "patience_s", "bid_window_s"}


def _ints_as_floats(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = _ints_as_floats(value)
        elif key in _FLOAT_FIELDS and type(value) is int:
            out[key] = float(value)
        elif isinstance(value, list):
            out[key] = tuple(value)
        else:
            out[key] = value
    return out


def _where(loc: tuple[Any, ...]) -> str:
    # pydantic puts the union member's tag in the path ("auction.english.increment").
    return ".".join(str(part) for part in loc) or "(document)"

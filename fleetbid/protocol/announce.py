"""Announcements: what the fleet tells monitors on its best-effort multicast group.

Not agent messages (no XMPP, no `Body`): small, self-describing updates that any number of
monitors (`fleetbid auctions`, the live map) merge into a picture of the fleet. A field left
at None means "unchanged by this update", so a lost datagram only delays a detail.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from fleetbid.protocol.schema import AuctionId, NodeId

Count = Annotated[int, msgspec.Meta(ge=0)]
Short = Annotated[str, msgspec.Meta(max_length=256)]

# The life of an auction as monitors see it.
AuctionState = Literal["open", "round", "waiting", "assigned", "closed", "unserved",
                       "picked_up"]
# repositioning: driving empty toward demand, not available (policies/reposition.py)
VehicleState = Literal["idle", "to_pickup", "with_passenger", "repositioning"]
MAX_CLUSTERS = 64  # demand figures: clusters per announcement (one datagram)
MAX_PICKUPS = 8  # demand figures: latest pickups per cluster


class News(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", omit_defaults=True):
    """Base: when it was sent, in simulated seconds (`at`) and on the wall (`wall`)."""

    at: float
    wall: float


class AuctionNews(News, tag="auction"):
    auction_id: AuctionId
    state: AuctionState
    cluster: Count | None = None
    pickup: NodeId | None = None
    dropoff: NodeId | None = None
    bidders: Count | None = None
    best_bid: float | None = None
    deadline: float | None = None  # simulated seconds: the current round's end
    round: Count | None = None
    winner: Short | None = None
    price: float | None = None
    reason: Short | None = None
    speed: float | None = None  # simulated seconds per wall second: monitors count down


class VehicleNews(News, tag="vehicle"):
    """A vehicle idle at `node`, or driving from `node` to `target`, leaving at `start` and
    arriving `duration` simulated seconds later (the map interpolates in between)."""

    vehicle: Short
    state: VehicleState
    node: NodeId
    target: NodeId | None = None
    start: float | None = None
    duration: float | None = None


class FleetStats(News, tag="stats"):
    """One process's message counter, about once a second: monitors derive messages/s."""

    process: Count
    sent: Count


class ClusterDemand(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster's figures (policies/reposition.ClusterFigures)."""

    cluster: Count
    requests: Count  # in the manager's window
    idle: Count
    heading: Count  # vehicles repositioning toward it
    pickups: Annotated[tuple[NodeId, ...], msgspec.Meta(max_length=MAX_PICKUPS)] = ()


class DemandNews(News, tag="demand"):
    """The MainManager's repositioning figures, every tick: what an idle vehicle decides
    from (behaviours/demand.py). Vehicles check them further: range, map, age."""

    window_s: Annotated[float, msgspec.Meta(gt=0)]
    clusters: Annotated[tuple[ClusterDemand, ...], msgspec.Meta(max_length=MAX_CLUSTERS)]


Announcement = AuctionNews | VehicleNews | FleetStats | DemandNews

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Announcement)


def encode(news: Announcement) -> bytes:
    return _encoder.encode(news)


def decode(data: bytes) -> Announcement:
    """Raises msgspec.ValidationError / DecodeError on anything that is not an announcement."""
    return _decoder.decode(data)


def to_builtins(news: Announcement) -> dict[str, object]:
    """JSON-ready dict (with its `kind`), as `fleetbid auctions --json` and the page use."""
    out = msgspec.to_builtins(news)
    assert isinstance(out, dict)
    return out

"""Passenger requests of a run: Poisson arrivals between random road nodes, seeded."""

from __future__ import annotations

import random
from dataclasses import dataclass

from fleetbid.maps import RoadMap


@dataclass(frozen=True)
class Request:
    request_id: str
    at: float  # simulated seconds after the start
    source: str
    destination: str


def poisson_requests(roadmap: RoadMap, count: int, per_minute: float, seed: int) -> list[Request]:
    """`count` requests, exponential gaps of mean 60/per_minute simulated seconds."""
    rng = random.Random(f"requests-{seed}")
    nodes = roadmap.nodes
    at = 0.0
    requests = []
    for i in range(count):
        at += rng.expovariate(per_minute / 60.0)
        source = nodes[rng.randrange(len(nodes))]
        destination = source
        while destination == source:
            destination = nodes[rng.randrange(len(nodes))]
        requests.append(Request(f"r{i:05d}", at, source, destination))
    return requests

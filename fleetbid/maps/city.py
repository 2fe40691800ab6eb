"""A seeded, generated grid city that behaves like a road network (no data files needed)."""

from __future__ import annotations

import math
import random

import networkx as nx

from fleetbid.maps.projection import LocalProjection
from fleetbid.maps.roadmap import RoadMap

# Fake lon/lat origin (central Paris) so "--from LAT,LON" works on the generated city too.
CITY_ORIGIN = LocalProjection(lat0=48.85, lon0=2.35)
ARTERIAL_EVERY = 6
ARTERIAL_KMH = 50.0
MINOR_KMH = 30.0
JITTER = 0.08  # of a block, per axis: enough to break the perfect grid, never crosses streets
REMOVED_PER_BLOCK2 = 1 / 40  # share of minor segments dropped, relative to blocks²


def generate_city(seed: int = 0, blocks: int = 24, block_m: float = 220.0) -> RoadMap:
    """A (blocks+1)² grid of intersections centred on CITY_ORIGIN, strongly connected.

    Every 6th street (and both border streets) is a two-way 50 km/h arterial; the other streets
    are 30 km/h and about a third of them are one-way, direction alternating street by street.
    A few minor segments are removed when that keeps the graph strongly connected.
    """
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    if not block_m > 0:
        raise ValueError(f"block_m must be > 0, got {block_m}")
    rng = random.Random(seed)
    n = blocks + 1
    half = blocks * block_m / 2

    def nid(i: int, j: int) -> str:
        return str(j * n + i)

    graph = nx.DiGraph(seed=seed, blocks=blocks, block_m=block_m)
    for j in range(n):
        for i in range(n):
            x = i * block_m - half + rng.uniform(-JITTER, JITTER) * block_m
            y = j * block_m - half + rng.uniform(-JITTER, JITTER) * block_m
            lon, lat = CITY_ORIGIN.to_lonlat(x, y)
            graph.add_node(nid(i, j), x=x, y=y, lon=float(lon), lat=float(lat))

    minor: list[tuple[str, str]] = []
    # Streets: horizontal ones (index j) run along i, vertical ones (index i) run along j.
    for horizontal in (True, False):
        one_way_count = 0
        minor_count = 0
        for street in range(n):
            arterial = street % ARTERIAL_EVERY == 0 or street == blocks
            direction = 0  # 0 two-way, +1 increasing index, -1 decreasing
            if not arterial:
                minor_count += 1
                if minor_count % 3 == 1:
                    direction = 1 if one_way_count % 2 == 0 else -1
                    one_way_count += 1
            kmh = ARTERIAL_KMH if arterial else MINOR_KMH
            for k in range(blocks):
                a = nid(k, street) if horizontal else nid(street, k)
                b = nid(k + 1, street) if horizontal else nid(street, k + 1)
                if direction == -1:
                    a, b = b, a
                _add_road(graph, a, b, kmh, arterial, two_way=direction == 0)
                if not arterial:
                    minor.append((a, b))

    _remove_some(graph, minor, rng, round(blocks * blocks * REMOVED_PER_BLOCK2))
    return RoadMap(name=f"builtin-city-seed{seed}", graph=graph, projection=CITY_ORIGIN)


def _add_road(graph: nx.DiGraph, a: str, b: str, kmh: float, arterial: bool, two_way: bool) -> None:
    ax, ay = graph.nodes[a]["x"], graph.nodes[a]["y"]
    bx, by = graph.nodes[b]["x"], graph.nodes[b]["y"]
    length = math.hypot(ax - bx, ay - by)
    speed = kmh / 3.6
    attrs = {
        "length": length,
        "speed": speed,
        "travel_time": length / speed,
        "highway": "primary" if arterial else "residential",
        "oneway": not two_way,
    }
    graph.add_edge(a, b, **attrs)
    if two_way:
        graph.add_edge(b, a, **attrs)


def _remove_some(
    graph: nx.DiGraph, minor: list[tuple[str, str]], rng: random.Random, count: int
) -> None:
    """Drop up to ``count`` random minor segments (both directions), never breaking connectivity."""
    for a, b in rng.sample(minor, min(count, len(minor))):
        removed = [(u, v, graph.edges[u, v]) for u, v in ((a, b), (b, a)) if graph.has_edge(u, v)]
        graph.remove_edges_from([(u, v) for u, v, _ in removed])
        if not nx.is_strongly_connected(graph):
            graph.add_edges_from(removed)

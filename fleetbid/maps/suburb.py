"""A seeded, generated suburban network in the spirit of Tysons Corner, Virginia.

Few, fast roads: a coarse grid of two-way 72 km/h arterials (a `block_m` square mesh, with an
access node every `access_m`), and from the access nodes, dead-end subdivisions: a collector
running perpendicular to the arterial with short cul-de-sac branches. Every street is two-way,
so the network is strongly connected, and almost every trip has to use the arterials.
"""

from __future__ import annotations

import math
import random

import networkx as nx

from fleetbid.maps.projection import LocalProjection
from fleetbid.maps.roadmap import RoadMap

TYSONS = LocalProjection(lat0=38.918, lon0=-77.230)
ARTERIAL_KMH = 72.0
COLLECTOR_KMH = 40.0
CULDESAC_KMH = 30.0
SUBDIVISION_P = 0.7  # share of access nodes that lead into a subdivision
COLLECTOR_SEGMENTS = (2, 4)
COLLECTOR_STEP_M = 100.0
BRANCH_P = 0.5
BRANCH_SEGMENTS = (1, 2)
BRANCH_STEP_M = 70.0


def generate_suburb(
    seed: int = 0, blocks: int = 5, block_m: float = 1200.0, access_m: float = 200.0
) -> RoadMap:
    """The suburb for `seed`: (blocks+1)² arterial intersections, subdivisions between them."""
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    if not (block_m > 0 and 0 < access_m <= block_m):
        raise ValueError("need block_m > 0 and 0 < access_m <= block_m")
    rng = random.Random(f"suburb-{seed}")
    graph = nx.DiGraph(seed=seed, blocks=blocks, block_m=block_m)
    half = blocks * block_m / 2
    steps = max(1, round(block_m / access_m))
    counter = iter(range(10**9))

    def add_node(x: float, y: float) -> str:
        node = str(next(counter))
        lon, lat = TYSONS.to_lonlat(x, y)
        graph.add_node(node, x=x, y=y, lon=float(lon), lat=float(lat))
        return node

    grid = {(i, j): add_node(i * block_m - half, j * block_m - half)
            for i in range(blocks + 1) for j in range(blocks + 1)}
    access: list[tuple[str, float, float]] = []  # node, unit normal (x, y)
    for horizontal in (True, False):
        for line in range(blocks + 1):
            for k in range(blocks):
                a = grid[(k, line)] if horizontal else grid[(line, k)]
                b = grid[(k + 1, line)] if horizontal else grid[(line, k + 1)]
                ax, ay = graph.nodes[a]["x"], graph.nodes[a]["y"]
                bx, by = graph.nodes[b]["x"], graph.nodes[b]["y"]
                previous = a
                for s in range(1, steps + 1):
                    if s == steps:
                        node = b
                    else:
                        t = s / steps
                        node = add_node(ax + (bx - ax) * t, ay + (by - ay) * t)
                        access.append((node, *((0.0, 1.0) if horizontal else (1.0, 0.0))))
                    _road(graph, previous, node, ARTERIAL_KMH, "primary")
                    previous = node

    for node, nx_, ny_ in access:
        if rng.random() >= SUBDIVISION_P:
            continue
        side = rng.choice((-1.0, 1.0))
        dx, dy = nx_ * side, ny_ * side
        here = node
        for _ in range(rng.randint(*COLLECTOR_SEGMENTS)):
            x = graph.nodes[here]["x"] + dx * COLLECTOR_STEP_M * rng.uniform(0.8, 1.2)
            y = graph.nodes[here]["y"] + dy * COLLECTOR_STEP_M * rng.uniform(0.8, 1.2)
            nxt = add_node(x, y)
            _road(graph, here, nxt, COLLECTOR_KMH, "residential")
            here = nxt
            if rng.random() < BRANCH_P:  # a cul-de-sac off the collector
                bside = rng.choice((-1.0, 1.0))
                tip = here
                for _ in range(rng.randint(*BRANCH_SEGMENTS)):
                    bx = graph.nodes[tip]["x"] + dy * bside * BRANCH_STEP_M
                    by = graph.nodes[tip]["y"] + dx * bside * BRANCH_STEP_M
                    new = add_node(bx, by)
                    _road(graph, tip, new, CULDESAC_KMH, "service")
                    tip = new
    return RoadMap(name=f"suburb-seed{seed}", graph=graph, projection=TYSONS)


def _road(graph: nx.DiGraph, a: str, b: str, kmh: float, highway: str) -> None:
    length = max(0.1, math.hypot(graph.nodes[a]["x"] - graph.nodes[b]["x"],
                                 graph.nodes[a]["y"] - graph.nodes[b]["y"]))
    speed = kmh / 3.6
    attrs = {"length": length, "speed": speed, "travel_time": length / speed,
             "highway": highway, "oneway": False}
    graph.add_edge(a, b, **attrs)
    graph.add_edge(b, a, **attrs)

"""Shortest travel times and routes on a RoadMap (Dijkstra on ``travel_time``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import networkx as nx

from fleetbid.maps.roadmap import RoadMap

WEIGHT = "travel_time"
CACHE_SOURCES = 512


class TravelTimes:
    """Travel-time oracle. Single-source results are LRU-cached: a vehicle prices many pickups
    from one position, and a task is priced by many vehicles (``times_to``)."""

    def __init__(self, roadmap: RoadMap, cache_size: int = CACHE_SOURCES) -> None:
        self.roadmap = roadmap
        self._graph = roadmap.graph
        self._reverse = roadmap.graph.reverse(copy=False)
        # Per-instance caches (a method-level lru_cache would keep every instance alive).
        self._from: Callable[[str], dict[str, float]] = lru_cache(cache_size)(
            lambda src: nx.single_source_dijkstra_path_length(self._graph, src, weight=WEIGHT)
        )
        self._to: Callable[[str], dict[str, float]] = lru_cache(cache_size)(
            lambda dst: nx.single_source_dijkstra_path_length(self._reverse, dst, weight=WEIGHT)
        )

    def _check(self, node: str) -> None:
        if node not in self._graph:
            raise KeyError(self.roadmap.missing(node))

    def time_s(self, src: str, dst: str) -> float:
        """Shortest travel time in seconds (0 if src == dst, inf if unreachable)."""
        self._check(src)
        self._check(dst)
        return 0.0 if src == dst else self._from(src).get(dst, math.inf)

    def time_to(self, src: str, dst: str) -> float:
        """Same as `time_s`, computed from `dst`'s side: one Dijkstra on the reversed graph
        serves every vehicle of the process that prices the same pickup."""
        self._check(src)
        self._check(dst)
        return 0.0 if src == dst else self._to(dst).get(src, math.inf)

    def times_from(self, src: str) -> dict[str, float]:
        """Seconds from ``src`` to every reachable node (a copy; the cache stays intact)."""
        self._check(src)
        return dict(self._from(src))

    def times_to(self, dst: str) -> dict[str, float]:
        """Seconds from every node that can reach ``dst`` to ``dst`` (a copy)."""
        self._check(dst)
        return dict(self._to(dst))

    def route(self, src: str, dst: str) -> list[str]:
        """Fastest node sequence from src to dst, both included; ValueError if unreachable."""
        self._check(src)
        self._check(dst)
        try:
            return list(nx.bidirectional_dijkstra(self._graph, src, dst, weight=WEIGHT)[1])
        except nx.NetworkXNoPath:
            raise ValueError(f"no route from {src!r} to {dst!r} on {self.roadmap.name}") from None

    def route_length_m(self, route: Sequence[str]) -> float:
        """Road length of a node sequence in metres; ValueError if two nodes are not linked."""
        total = 0.0
        for u, v in zip(route, route[1:], strict=False):
            edge = self._graph.get_edge_data(u, v)
            if edge is None:
                raise ValueError(f"route has no road from {u!r} to {v!r}")
            total += edge["length"]
        return total

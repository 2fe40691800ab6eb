"""All-pairs travel times for the simulator: scipy.sparse.csgraph Dijkstra from every node.

The paper's maps have a few thousand nodes, so the full matrix (n² float64, ~56 MB for central
Bengaluru) is computed once per map in about a second by csgraph's C Dijkstra, and then every
question a policy asks is an array lookup. Route lengths (for the empty-distance ratio) walk
the predecessor matrix of the same run, so a length is always that of the fastest route.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from fleetbid.maps import RoadMap

_CACHE: weakref.WeakKeyDictionary[RoadMap, TravelMatrix] = weakref.WeakKeyDictionary()


class TravelMatrix:
    """Seconds and metres between any two nodes of a RoadMap, along the fastest route."""

    def __init__(self, roadmap: RoadMap) -> None:
        self.roadmap = roadmap
        nodes = roadmap.nodes
        self.index = {node: i for i, node in enumerate(nodes)}
        n = len(nodes)
        rows, cols, times = [], [], []
        self._edge_m: dict[tuple[int, int], float] = {}
        for u, v, data in roadmap.graph.edges(data=True):
            i, j = self.index[u], self.index[v]
            rows.append(i)
            cols.append(j)
            times.append(float(data["travel_time"]))
            self._edge_m[(i, j)] = float(data["length"])
        if times and min(times) <= 0:
            raise ValueError(f"{roadmap.name}: travel times must be > 0 (csgraph drops zeros)")
        graph = csr_matrix((times, (rows, cols)), shape=(n, n))
        self.seconds, self._pred = dijkstra(graph, directed=True, return_predecessors=True)
        self._length: dict[tuple[int, int], float] = {}

    @classmethod
    def for_map(cls, roadmap: RoadMap) -> TravelMatrix:
        """One matrix per map object per process."""
        if roadmap not in _CACHE:
            _CACHE[roadmap] = cls(roadmap)
        return _CACHE[roadmap]

    def idx(self, nodes: Sequence[str]) -> NDArray[np.intp]:
        try:
            return np.fromiter((self.index[n] for n in nodes), dtype=np.intp, count=len(nodes))
        except KeyError as exc:
            raise KeyError(f"node {exc} is not on map {self.roadmap.name}") from None

    def times(self, origins: Sequence[str], targets: Sequence[str]) -> NDArray[np.float64]:
        return self.seconds[np.ix_(self.idx(origins), self.idx(targets))]

    def time_s(self, a: int, b: int) -> float:
        return float(self.seconds[a, b])

    def length_m(self, a: int, b: int) -> float:
        """Metres along the fastest route from index a to index b (cached per pair)."""
        key = (a, b)
        cached = self._length.get(key)
        if cached is not None:
            return cached
        total, here, pred = 0.0, b, self._pred[a]
        while here != a:
            back = int(pred[here])
            if back < 0:
                raise ValueError(f"no route between node indices {a} and {b}")
            total += self._edge_m[(back, here)]
            here = back
        self._length[key] = total
        return total

"""RoadMap: a directed road graph with metre coordinates, lon/lat and snapping.

Loaders live in their own modules (graphml, city, loading, paper).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from fleetbid.maps.errors import MapError
from fleetbid.maps.projection import LocalProjection

DEFAULT_MAX_SNAP_M = 500.0


# eq=False: maps are compared and hashed by identity (they are shared, cached, read-only objects).
@dataclass(eq=False)
class RoadMap:
    """A strongly connected road graph. Treat it as read-only: it is shared between agents.

    Node attrs: ``x``, ``y`` (metres), ``lon``, ``lat``. Edge attrs: ``length`` (m),
    ``speed`` (m/s), ``travel_time`` (s). ``projection`` maps lon/lat to the same metres as x/y;
    when omitted it is centred on the nodes' lon/lat bounding box. ``unreachable``: node ids
    of the source file that the loader dropped (outside the largest strongly connected
    component); they are not on the map, but `missing` can say why.
    """

    name: str
    graph: nx.DiGraph
    projection: LocalProjection | None = None
    unreachable: frozenset[str] = frozenset()
    _nodes: tuple[str, ...] = field(init=False, repr=False)
    _index: dict[str, int] = field(init=False, repr=False)
    _xy: NDArray[np.float64] = field(init=False, repr=False)
    _lonlat: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.graph.number_of_nodes() == 0:
            raise MapError(f"{self.name}: road graph has no nodes")
        self._nodes = tuple(sorted(self.graph.nodes))
        self._index = {n: i for i, n in enumerate(self._nodes)}
        data = self.graph.nodes
        try:
            self._xy = np.array([(data[n]["x"], data[n]["y"]) for n in self._nodes], dtype=float)
            lonlat = np.array([(data[n]["lon"], data[n]["lat"]) for n in self._nodes], dtype=float)
        except KeyError as exc:
            raise MapError(f"{self.name}: a node lacks the {exc} attribute") from None
        if self.projection is None:
            lo, hi = lonlat.min(axis=0), lonlat.max(axis=0)
            self.projection = LocalProjection(lat0=(lo[1] + hi[1]) / 2, lon0=(lo[0] + hi[0]) / 2)
        self._lonlat = lonlat

    # --- nodes -------------------------------------------------------------------------------
    @property
    def nodes(self) -> list[str]:
        """All node ids, sorted (a fresh list each call)."""
        return list(self._nodes)

    def has_node(self, node: str) -> bool:
        return node in self._index

    def missing(self, node: str) -> str:
        """Why `node` is not on the map, as a message for the user (for a refused request)."""
        if node in self.unreachable:
            return (f"node {node!r} is not on map {self.name}: it was dropped on loading, being "
                    "outside the largest strongly connected component (no route both to and "
                    "from the rest of the roads)")
        return f"node {node!r} is not on map {self.name}"

    def _i(self, node: str) -> int:
        try:
            return self._index[node]
        except KeyError:
            raise KeyError(self.missing(node)) from None

    def xy(self, node: str) -> tuple[float, float]:
        """Projected position in metres."""
        x, y = self._xy[self._i(node)]
        return float(x), float(y)

    def lonlat(self, node: str) -> tuple[float, float]:
        lon, lat = self._lonlat[self._i(node)]
        return float(lon), float(lat)

    def distance_m(self, a: str, b: str) -> float:
        """Straight-line distance in metres."""
        (ax, ay), (bx, by) = self._xy[self._i(a)], self._xy[self._i(b)]
        return math.hypot(ax - bx, ay - by)

    def random_node(self, rng: random.Random) -> str:
        return rng.choice(self._nodes)

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in metres."""
        (minx, miny), (maxx, maxy) = self._xy.min(axis=0), self._xy.max(axis=0)
        return float(minx), float(miny), float(maxx), float(maxy)

    # --- snapping ----------------------------------------------------------------------------
    @cached_property
    def _snap_tree(self) -> cKDTree:
        # Built on projected lon/lat, not x/y, so snapping is right even if a caller's x/y
        # came from elsewhere; for the built-in loaders the two coincide.
        assert self.projection is not None
        x, y = self.projection.to_xy(self._lonlat[:, 0], self._lonlat[:, 1])
        return cKDTree(np.column_stack([x, y]))

    def nearest_node(self, lat: float, lon: float, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> str:
        """The node closest to (lat, lon); MapError if none is within ``max_snap_m`` metres."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise MapError(f"point ({lat}, {lon}) is not a valid latitude/longitude")
        assert self.projection is not None
        x, y = self.projection.to_xy(lon, lat)
        dist, i = self._snap_tree.query([float(x), float(y)])
        if not dist <= max_snap_m:
            raise MapError(
                f"point ({lat}, {lon}) is off the map {self.name}: "
                f"nearest road node is {dist:.0f} m away (limit {max_snap_m:.0f} m)"
            )
        return self._nodes[int(i)]

    @cached_property
    def _xy_tree(self) -> cKDTree:
        return cKDTree(self._xy)

    def nearest_node_xy(self, x: float, y: float) -> str:
        """The node closest to a point in map metres (no distance limit)."""
        _, i = self._xy_tree.query([x, y])
        return self._nodes[int(i)]

    # --- bulk access ------------------------------------------------------------------------
    def node_xy_array(self) -> NDArray[np.float64]:
        """(n, 2) metres, rows in the order of :attr:`nodes` (a copy)."""
        return self._xy.copy()

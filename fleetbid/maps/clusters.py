"""Geographic clusters: Voronoi cells around k-means seeds of a map's nodes."""

from __future__ import annotations

import warnings
import weakref

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.cluster.vq import kmeans2
from shapely.geometry import MultiPoint, Point, box

from fleetbid.maps.roadmap import RoadMap

BBOX_MARGIN_M = 1000.0
KMEANS_ITER = 20

# Keyed by the RoadMap object (identity), not its name: two generated cities of different sizes
# share a name. Weak keys so a dropped map frees its clusters.
_CACHE: weakref.WeakKeyDictionary[RoadMap, dict[tuple[int, int], Clusters]] = (
    weakref.WeakKeyDictionary()
)


class Clusters:
    """k polygons (column ``cluster`` 0..k-1, map metres, no CRS) that tile the map's area."""

    def __init__(
        self,
        gdf: gpd.GeoDataFrame,
        seeds: NDArray[np.float64],
        node_ids: list[str],
        node_xy: NDArray[np.float64],
    ) -> None:
        self.gdf = gdf
        self.k = len(gdf)
        self._seeds = np.asarray(seeds, dtype=float)
        self._cluster_ids = gdf["cluster"].to_numpy(dtype=int)
        self._node_cluster = dict(zip(node_ids, self._classify(node_xy), strict=True))
        self._members: dict[int, list[str]] = {c: [] for c in range(self.k)}
        for node in sorted(self._node_cluster):
            self._members[self._node_cluster[node]].append(node)
        self._neighbours: dict[int, tuple[int, ...]] | None = None  # built on first use

    def _classify(self, xy: NDArray[np.float64]) -> list[int]:
        """Vectorised point-in-cell; smallest id on shared borders, nearest seed if outside."""
        src, cell = self.gdf.sindex.query(shapely.points(xy), predicate="intersects")
        best = np.full(len(xy), self.k, dtype=int)
        np.minimum.at(best, src, self._cluster_ids[cell])
        outside = best == self.k
        if outside.any():
            best[outside] = [self._nearest_seed(x, y) for x, y in xy[outside]]
        return [int(c) for c in best]

    def _nearest_seed(self, x: float, y: float) -> int:
        d2 = ((self._seeds - (x, y)) ** 2).sum(axis=1)
        return int(np.argmin(d2))

    def cluster_of_xy(self, x: float, y: float) -> int:
        """The cell containing (x, y) metres; outside every cell, the nearest seed's cluster."""
        hits = self.gdf.sindex.query(Point(x, y), predicate="intersects")
        if len(hits):
            return int(self._cluster_ids[hits].min())
        return self._nearest_seed(x, y)

    def cluster_of_node(self, node: str) -> int:
        try:
            return self._node_cluster[node]
        except KeyError:
            raise KeyError(f"node {node!r} is not on the clustered map") from None

    def nodes_in(self, cluster: int) -> list[str]:
        """Sorted node ids of a cluster (a fresh list)."""
        if cluster not in self._members:
            raise KeyError(f"no cluster {cluster!r}; clusters are 0..{self.k - 1}")
        return list(self._members[cluster])

    def centre(self, cluster: int) -> tuple[float, float]:
        """The cluster's seed point (k-means centroid) in metres."""
        x, y = self._seeds[cluster]
        return float(x), float(y)

    def neighbours(self, cluster: int) -> tuple[int, ...]:
        """The clusters whose cells share a border with this one, nearest seed first (then
        id): where a request goes when its own cluster has no idle vehicle (spill-over)."""
        if cluster not in self._members:
            raise KeyError(f"no cluster {cluster!r}; clusters are 0..{self.k - 1}")
        if self._neighbours is None:
            self._neighbours = self._adjacency()
        return self._neighbours[cluster]

    def _adjacency(self) -> dict[int, tuple[int, ...]]:
        cells = list(self.gdf.geometry)
        out: dict[int, tuple[int, ...]] = {}
        for c in range(self.k):
            touching = [o for o in range(self.k) if o != c and cells[c].intersects(cells[o])]
            d2 = ((self._seeds[touching] - self._seeds[c]) ** 2).sum(axis=1)
            out[c] = tuple(o for _, o in sorted(zip(d2.tolist(), touching, strict=True)))
        return out


def make_clusters(roadmap: RoadMap, k: int = 4, seed: int = 0) -> Clusters:
    """Deterministic clusters for (map, k, seed), cached per map object in-process."""
    per_map = _CACHE.setdefault(roadmap, {})
    if (k, seed) not in per_map:
        per_map[(k, seed)] = _build(roadmap, k, seed)
    return per_map[(k, seed)]


def _build(roadmap: RoadMap, k: int, seed: int) -> Clusters:
    xy = roadmap.node_xy_array()
    n = len(xy)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of nodes ({n}), got {k}")
    if k > len(np.unique(xy, axis=0)):
        raise ValueError(f"k={k} exceeds the number of distinct node positions on {roadmap.name}")
    seeds = _kmeans_seeds(xy, k, seed)

    minx, miny, maxx, maxy = roadmap.bounds
    frame = box(minx, miny, maxx, maxy).buffer(BBOX_MARGIN_M, join_style="mitre")
    # ordered=True returns cell i for seed i, so cluster ids follow the seed order.
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame, ordered=True)
    polygons = [cell.intersection(frame) for cell in cells.geoms]
    gdf = gpd.GeoDataFrame({"cluster": np.arange(k)}, geometry=polygons, crs=None)
    return Clusters(gdf, seeds, roadmap.nodes, xy)


def _kmeans_seeds(xy: NDArray[np.float64], k: int, seed: int) -> NDArray[np.float64]:
    """k distinct seed points; k-means so cells hold roughly equal numbers of nodes."""
    if k == 1:
        return xy.mean(axis=0, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "one of the clusters is empty": repaired below
        centroids, _ = kmeans2(xy, k, iter=KMEANS_ITER, minit="++", rng=np.random.default_rng(seed))
    # Voronoi needs k distinct seeds; replace duplicates by the node farthest from the rest.
    unique: list[NDArray[np.float64]] = []
    for c in centroids:
        if not any(np.array_equal(c, u) for u in unique):
            unique.append(c)
    while len(unique) < k:
        d2 = ((xy[:, None, :] - np.array(unique)[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        unique.append(xy[int(np.argmax(d2))])
    return np.array(unique)

"""The live map's base layer as GeoJSON (lon/lat, WGS84): roads, clusters and road nodes.

Made with geopandas (a dependency already, for the clusters). Roads are drawn once per pair
of nodes: a two-way street is two directed edges but one line on the map.
"""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from fleetbid.maps.clusters import Clusters
from fleetbid.maps.roadmap import RoadMap


def roads(roadmap: RoadMap) -> gpd.GeoDataFrame:
    pairs = sorted({tuple(sorted((str(a), str(b)))) for a, b in roadmap.graph.edges})
    lines = [shapely.LineString([roadmap.lonlat(a), roadmap.lonlat(b)]) for a, b in pairs]
    return gpd.GeoDataFrame({"layer": ["road"] * len(pairs), "a": [p[0] for p in pairs],
                             "b": [p[1] for p in pairs]}, geometry=lines)


def clusters(roadmap: RoadMap, cells: Clusters) -> gpd.GeoDataFrame:
    projection = roadmap.projection
    assert projection is not None

    def to_lonlat(xy: np.ndarray) -> np.ndarray:
        lon, lat = projection.to_lonlat(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    # The cells tile the map's box; clip them to the roads' hull, which is what a user sees.
    hull = shapely.MultiPoint(roadmap.node_xy_array()).convex_hull.buffer(50.0)
    shapes = [shapely.transform(shapely.intersection(g, hull), to_lonlat)
              for g in cells.gdf.geometry]
    return gpd.GeoDataFrame({"layer": ["cluster"] * cells.k,
                             "cluster": [int(c) for c in cells.gdf["cluster"]]},
                            geometry=shapes)


def feature_collection(roadmap: RoadMap, cells: Clusters) -> dict[str, Any]:
    """Clusters first (drawn below the roads), then roads."""
    frames = [clusters(roadmap, cells), roads(roadmap)]
    features: list[dict[str, Any]] = []
    for frame in frames:
        features += json.loads(frame.to_json(drop_id=True))["features"]
    return {"type": "FeatureCollection", "name": roadmap.name, "features": features}


def nodes(roadmap: RoadMap) -> dict[str, tuple[float, float]]:
    """Road node -> (lon, lat): vehicles and pickups are announced by node."""
    return {n: roadmap.lonlat(n) for n in roadmap.nodes}

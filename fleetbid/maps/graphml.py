"""Load an OSMnx-style GraphML street network (lon/lat nodes, metre edge lengths) as a RoadMap."""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx

from fleetbid.maps.errors import MapError
from fleetbid.maps.projection import LocalProjection
from fleetbid.maps.roadmap import RoadMap
from fleetbid.maps.speeds import edge_speed

MIN_KEPT_FRACTION = 0.5  # the largest strongly connected component must exceed this share
MIN_LENGTH_M = 0.1  # OSM has zero-length edges between coincident nodes; keep times positive


def load_graphml(
    path: str | os.PathLike[str], cap_kmh: float | None = None, congestion: float = 1.0
) -> RoadMap:
    """Read a GraphML road network; keep its largest strongly connected component.
    Edge speeds: `speeds.edge_speed` with the given cap and congestion factor.

    Raises MapError (naming the file and the problem) for anything unusable.
    """
    path = Path(path)
    raw = _read(path)
    lonlat = _node_lonlat(path, raw)
    lons = [lon for lon, _ in lonlat.values()]
    lats = [lat for _, lat in lonlat.values()]
    proj = LocalProjection(lat0=(min(lats) + max(lats)) / 2, lon0=(min(lons) + max(lons)) / 2)

    graph = nx.DiGraph(source=str(path))
    for node, (lon, lat) in lonlat.items():
        x, y = proj.to_xy(lon, lat)
        graph.add_node(node, x=float(x), y=float(y), lon=lon, lat=lat)
    for u, v, attrs in raw.edges(data=True):
        if u == v:
            continue  # self-loops never shorten a route
        length = _edge_length(path, u, v, attrs)
        speed = edge_speed(attrs, cap_kmh, congestion)
        edge = {
            "length": length,
            "speed": speed,
            "travel_time": length / speed,
            "highway": str(attrs.get("highway", "")),
        }
        # MultiDiGraph parallel edges collapse to the fastest one.
        old = graph.get_edge_data(u, v)
        if old is None or edge["travel_time"] < old["travel_time"]:
            graph.add_edge(u, v, **edge)

    total = graph.number_of_nodes()
    largest = max(nx.strongly_connected_components(graph), key=len)
    # Strictly more than half must survive: two disconnected halves is a broken map.
    if len(largest) < 2 or len(largest) <= MIN_KEPT_FRACTION * total:
        raise MapError(
            f"{path}: road graph is not strongly connected enough: largest strongly connected "
            f"component has {len(largest)} of {total} nodes"
        )
    graph = graph.subgraph(largest).copy()
    return RoadMap(name=path.stem, graph=graph, projection=proj)


def _read(path: Path) -> nx.Graph:
    if not path.exists():
        raise MapError(f"map file not found: {path}")
    if not path.is_file():
        raise MapError(f"map path is not a file: {path}")
    try:
        # node_type=str is networkx's default; be explicit since fleetbid ids are str.
        raw = nx.read_graphml(path, node_type=str)
    except ET.ParseError as exc:
        raise MapError(f"{path} is not a GraphML file: unparseable XML ({exc})") from None
    except (nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        raise MapError(f"{path} is not a GraphML file: {exc}") from None
    except OSError as exc:
        raise MapError(f"cannot read map file {path}: {exc}") from None
    if raw.number_of_nodes() == 0:
        raise MapError(f"{path}: GraphML contains no nodes")
    return raw


def _node_lonlat(path: Path, raw: nx.Graph) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for node, attrs in raw.nodes(data=True):
        if "x" not in attrs or "y" not in attrs:
            raise MapError(f"{path}: nodes have no x/y coordinates (first such node: {node!r})")
        try:
            lon, lat = float(attrs["x"]), float(attrs["y"])
        except (TypeError, ValueError):
            raise MapError(
                f"{path}: node {node!r} has non-numeric x/y coordinates "
                f"({attrs['x']!r}, {attrs['y']!r})"
            ) from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise MapError(
                f"{path}: node {node!r} has x/y ({lon}, {lat}) outside lon/lat range; "
                "the graph must be unprojected (EPSG:4326)"
            )
        out[str(node)] = (lon, lat)
    return out


def _edge_length(path: Path, u: str, v: str, attrs: dict[str, Any]) -> float:
    try:
        length = float(attrs["length"])
    except KeyError:
        raise MapError(f"{path}: edge {u!r}->{v!r} has no length attribute") from None
    except (TypeError, ValueError):
        raise MapError(
            f"{path}: edge {u!r}->{v!r} has a non-numeric length {attrs['length']!r}"
        ) from None
    if not math.isfinite(length) or length < 0:
        raise MapError(f"{path}: edge {u!r}->{v!r} has an unusable length {length}")
    return max(length, MIN_LENGTH_M)

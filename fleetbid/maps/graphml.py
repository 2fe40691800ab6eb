"""Load an OSMnx-style GraphML street network (lon/lat nodes, metre edge lengths) as a RoadMap.

What any OSMnx file may hold, and what the loader does with it (docs/maps.md):
- every value as a string ("12.5", "50 mph", "['30', '50']", "yes", "True"): parsed here and
  in speeds.py; unparseable speeds fall back to the road class.
- directed graphs (OSMnx's MultiDiGraph): the edges are the driving directions, so `oneway`
  is not needed and ignored. Undirected graphs (ox.get_undirected): two-way, except an edge
  marked oneway that says which way it was digitised (`from`/`to`).
- projected graphs (ox.project_graph): the nodes' `lon`/`lat` are used instead of `x`/`y`.
- not strongly connected: only the largest strongly connected component is kept (every kept
  node can reach every other); the dropped node ids are kept in `RoadMap.unreachable`.
- compressed files: `.xz`, `.gz` and `.bz2` are read transparently.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import networkx as nx

from fleetbid.maps.errors import MapError
from fleetbid.maps.projection import LocalProjection
from fleetbid.maps.roadmap import RoadMap
from fleetbid.maps.speeds import edge_speed, tag_values

MIN_KEPT_FRACTION = 0.5  # the largest strongly connected component must exceed this share
MIN_LENGTH_M = 0.1  # OSM has zero-length edges between coincident nodes; keep times positive
_OPENERS: dict[str, Callable[..., IO[bytes]]] = {".xz": lzma.open, ".gz": gzip.open,
                                                 ".bz2": bz2.open}
_TRUE = {"yes", "true", "1"}
_UNPROJECTED = {"epsg:4326", "wgs84", "wgs 84"}


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
        for a, b in _directions(raw, u, v, attrs):
            # MultiDiGraph parallel edges collapse to the fastest one.
            old = graph.get_edge_data(a, b)
            if old is None or edge["travel_time"] < old["travel_time"]:
                graph.add_edge(a, b, **edge)

    total = graph.number_of_nodes()
    largest = max(nx.strongly_connected_components(graph), key=len)
    # Strictly more than half must survive: two disconnected halves is a broken map.
    if len(largest) < 2 or len(largest) <= MIN_KEPT_FRACTION * total:
        raise MapError(
            f"{path}: road graph is not strongly connected enough: largest strongly connected "
            f"component has {len(largest)} of {total} nodes"
        )
    # Nodes outside it cannot both reach and be reached from the rest: a vehicle sent there
    # could be stuck for ever, so they are not on the map (requests for them are refused).
    unreachable = frozenset(graph.nodes - largest)
    graph = graph.subgraph(largest).copy()
    return RoadMap(name=_map_name(path), graph=graph, projection=proj, unreachable=unreachable)


def _map_name(path: Path) -> str:
    """"city.graphml.xz" -> "city": the packaged and the plain file give the same name."""
    name = path.name
    if path.suffix.lower() in _OPENERS:
        name = name[: -len(path.suffix)]
    return Path(name).stem


def _directions(raw: nx.Graph, u: str, v: str, attrs: dict[str, Any]) -> list[tuple[str, str]]:
    """The driving directions of one GraphML edge (see the module docstring)."""
    if raw.is_directed():
        return [(u, v)]
    if _is_true(attrs.get("oneway")):
        ends = (str(attrs.get("from", "")), str(attrs.get("to", "")))
        if set(ends) == {u, v}:
            return [ends]
    return [(u, v), (v, u)]


def _is_true(value: Any) -> bool:
    """OSMnx booleans arrive as True, "True", "yes", "1" or a list of them ("['True']")."""
    values = tag_values(value)
    return bool(values) and all(x.lower() in _TRUE for x in values)


def _read(path: Path) -> nx.Graph:
    if not path.exists():
        raise MapError(f"map file not found: {path}")
    if not path.is_file():
        raise MapError(f"map path is not a file: {path}")
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as stream:
            # node_type=str is networkx's default; be explicit since fleetbid ids are str.
            raw = nx.read_graphml(stream, node_type=str)
    except ET.ParseError as exc:
        raise MapError(f"{path} is not a GraphML file: unparseable XML ({exc})") from None
    except (nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        raise MapError(f"{path} is not a GraphML file: {exc}") from None
    except (OSError, EOFError, lzma.LZMAError) as exc:  # unreadable, or corrupt compression
        raise MapError(f"cannot read map file {path}: {exc}") from None
    if raw.number_of_nodes() == 0:
        raise MapError(f"{path}: GraphML contains no nodes")
    return raw


def _coordinate_keys(raw: nx.Graph) -> tuple[str, str]:
    """("x", "y"), or ("lon", "lat") for a projected OSMnx graph (x/y in metres)."""
    crs = str(raw.graph.get("crs", "epsg:4326")).strip().lower()
    if crs in _UNPROJECTED:
        return "x", "y"
    if all("lon" in d and "lat" in d for _, d in raw.nodes(data=True)):
        return "lon", "lat"
    return "x", "y"  # the range check below names the problem


def _node_lonlat(path: Path, raw: nx.Graph) -> dict[str, tuple[float, float]]:
    kx, ky = _coordinate_keys(raw)
    out: dict[str, tuple[float, float]] = {}
    for node, attrs in raw.nodes(data=True):
        if kx not in attrs or ky not in attrs:
            raise MapError(f"{path}: nodes have no {kx}/{ky} coordinates (first such node: "
                           f"{node!r})")
        try:
            lon, lat = float(attrs[kx]), float(attrs[ky])
        except (TypeError, ValueError):
            raise MapError(
                f"{path}: node {node!r} has non-numeric {kx}/{ky} coordinates "
                f"({attrs[kx]!r}, {attrs[ky]!r})"
            ) from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise MapError(
                f"{path}: node {node!r} has {kx}/{ky} ({lon}, {lat}) outside lon/lat range; "
                "the graph must be unprojected (EPSG:4326), or projected with lon/lat kept on "
                "its nodes (as ox.project_graph does)"
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

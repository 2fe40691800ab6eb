"""Tests for fleetbid.maps: generated city, GraphML loading, clusters, travel times."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from fleetbid.maps import (
    Clusters,
    MapError,
    RoadMap,
    TravelTimes,
    generate_city,
    load_graphml,
    load_map,
    make_clusters,
)

BENGALURU = Path(__file__).resolve().parents[2] / "shared" / "maps" / "central_bengaluru.graphml"
# The same file, shipped in the package: the tests run even without ../shared/maps.
PACKAGED = Path(__file__).resolve().parents[1] / "fleetbid/maps/data/central_bengaluru.graphml.xz"


@pytest.fixture(scope="module")
def city() -> RoadMap:
    return load_map("builtin", seed=0)


@pytest.fixture(scope="module")
def bengaluru() -> RoadMap:
    return load_map(str(BENGALURU if BENGALURU.is_file() else PACKAGED))


@pytest.fixture(scope="module", params=["city", "bengaluru"])
def any_map(request: pytest.FixtureRequest) -> RoadMap:
    return request.getfixturevalue(request.param)


def _sample(roadmap: RoadMap, k: int, seed: int = 0) -> list[str]:
    return random.Random(seed).sample(roadmap.nodes, k)


# --- generated city ------------------------------------------------------------------------------


def _signature(m: RoadMap) -> tuple[object, object]:
    return (
        sorted(m.graph.nodes(data=True)),
        sorted((u, v, sorted(d.items())) for u, v, d in m.graph.edges(data=True)),
    )


def test_city_is_deterministic_per_seed() -> None:
    assert _signature(generate_city(3)) == _signature(generate_city(3))
    assert _signature(generate_city(3)) != _signature(generate_city(4))
    assert generate_city(3).name == "builtin-city-seed3"


@pytest.mark.parametrize(("seed", "blocks"), [(0, 24), (1, 24), (2, 7), (3, 1), (4, 13)])
def test_city_is_strongly_connected(seed: int, blocks: int) -> None:
    m = generate_city(seed, blocks=blocks)
    assert m.graph.number_of_nodes() == (blocks + 1) ** 2
    assert nx.is_strongly_connected(m.graph)


@pytest.mark.parametrize("blocks", [1, 2, 5, 6, 7, 12, 24])
def test_city_grid_is_strongly_connected_before_removals(
    monkeypatch: pytest.MonkeyPatch, blocks: int
) -> None:
    # Removals are checked one by one; the one-way pattern itself must already be connected.
    import fleetbid.maps.city as city_module

    monkeypatch.setattr(city_module, "REMOVED_PER_BLOCK2", 0.0)
    full = generate_city(0, blocks=blocks)
    assert nx.is_strongly_connected(full.graph)
    monkeypatch.undo()
    assert generate_city(0, blocks=blocks).graph.number_of_edges() <= full.graph.number_of_edges()
    if blocks == 24:  # a few segments really are removed
        assert generate_city(0).graph.number_of_edges() < full.graph.number_of_edges()


def test_city_shape(city: RoadMap) -> None:
    g = city.graph
    assert g.number_of_nodes() == 625
    assert 1800 < g.number_of_edges() < 2400  # 2·2·24·25 = 2400 if every street were two-way
    one_way = [(u, v) for u, v in g.edges if not g.has_edge(v, u)]
    assert len(one_way) > 100
    assert {round(d["speed"] * 3.6) for *_, d in g.edges(data=True)} == {30, 50}
    assert all(isinstance(n, str) for n in g.nodes)
    for u, v, d in g.edges(data=True):
        assert d["length"] == pytest.approx(city.distance_m(u, v))
        assert d["travel_time"] == pytest.approx(d["length"] / d["speed"])
        assert 100 < d["length"] < 350
    minx, miny, maxx, maxy = city.bounds
    assert 5000 < maxx - minx < 5600 and 5000 < maxy - miny < 5600


def test_city_lonlat_round_trip(city: RoadMap) -> None:
    for node in _sample(city, 50):
        lon, lat = city.lonlat(node)
        assert 48.7 < lat < 49.0 and 2.2 < lon < 2.5
        assert city.nearest_node(lat, lon) == node
    with pytest.raises(MapError, match="off the map"):
        city.nearest_node(48.0, 2.35)


def test_load_map_caches_and_dispatches(city: RoadMap) -> None:
    assert load_map(None) is city
    assert load_map("builtin", seed=1) is not city
    assert load_map("builtin", seed=1).name == "builtin-city-seed1"


# --- GraphML ------------------------------------------------------------------------------------


def test_bengaluru_loads(bengaluru: RoadMap) -> None:
    g = bengaluru.graph
    assert 2500 <= g.number_of_nodes() <= 2657
    assert 6000 <= g.number_of_edges() <= 6401
    assert nx.is_strongly_connected(g)
    assert type(g) is nx.DiGraph and all(isinstance(n, str) for n in g.nodes)
    for *_, d in g.edges(data=True):
        assert d["length"] > 0 and d["speed"] > 0
        assert d["travel_time"] == pytest.approx(d["length"] / d["speed"])
    minx, miny, maxx, maxy = bengaluru.bounds
    assert 3500 < maxx - minx < 4200 and 3500 < maxy - miny < 4200  # ~3.8 x 3.9 km
    tt = TravelTimes(bengaluru)
    nodes = _sample(bengaluru, 20)
    for a, b in zip(nodes, nodes[1:], strict=False):
        assert math.isfinite(tt.time_s(a, b)) and tt.time_s(a, b) > 0


def test_bengaluru_snapping(bengaluru: RoadMap) -> None:
    node = bengaluru.nearest_node(12.97, 77.60)
    lon, lat = bengaluru.lonlat(node)
    assert abs(lat - 12.97) < 0.003 and abs(lon - 77.60) < 0.003
    with pytest.raises(MapError, match="off the map"):
        bengaluru.nearest_node(0.0, 0.0)


def test_bengaluru_projection_matches_edge_lengths(bengaluru: RoadMap) -> None:
    # Straight-line distance can never exceed the road length (1 % projection slack).
    for u, v, d in bengaluru.graph.edges(data=True):
        assert bengaluru.distance_m(u, v) <= d["length"] * 1.01 + 0.5


def test_maxspeed_and_highway_speeds() -> None:
    from fleetbid.maps.speeds import edge_speed

    cases = {
        "plain": ({"maxspeed": "40"}, 40),
        "mph": ({"maxspeed": "30 mph"}, 48.28032),
        "list": ({"maxspeed": "['40', '50']"}, 45),
        "junk": ({"maxspeed": "walk", "highway": "primary"}, 50),
        "hw": ({"highway": "residential"}, 25),
        "hw_list": ({"highway": "['primary', 'secondary']"}, 45),
        "link": ({"highway": "motorway_link"}, 80),
        "none": ({}, 25),
    }
    for name, (attrs, kmh) in cases.items():
        assert edge_speed(attrs) * 3.6 == pytest.approx(kmh), name


# --- bad files ------------------------------------------------------------------------------------


def _write(tmp_path: Path, g: nx.Graph, name: str = "m.graphml") -> Path:
    path = tmp_path / name
    nx.write_graphml(g, path)
    return path


def _ring(n: int, offset: int = 0) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for i in range(n):
        g.add_node(str(offset + i), x=str(77.6 + 0.001 * i), y=str(12.97 + 0.001 * offset))
    for i in range(n):
        g.add_edge(str(offset + i), str(offset + (i + 1) % n), length="111.0")
    return g


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MapError, match="map file not found"):
        load_graphml(tmp_path / "nope.graphml")
    with pytest.raises(MapError, match="map file not found"):
        load_map(str(tmp_path / "nope.graphml"))


def test_not_xml(tmp_path: Path) -> None:
    path = tmp_path / "m.graphml"
    path.write_text("just some text\n")
    with pytest.raises(MapError, match="is not a GraphML file"):
        load_graphml(path)


def test_xml_but_not_graphml(tmp_path: Path) -> None:
    path = tmp_path / "m.graphml"
    path.write_text("<?xml version='1.0'?><html><body>hi</body></html>")
    with pytest.raises(MapError, match="is not a GraphML file"):
        load_graphml(path)


def test_graphml_without_coordinates(tmp_path: Path) -> None:
    g = nx.DiGraph()
    g.add_edge("a", "b", length="10")
    g.add_edge("b", "a", length="10")
    with pytest.raises(MapError, match="no x/y coordinates"):
        load_graphml(_write(tmp_path, g))


def test_graphml_non_numeric_coordinates(tmp_path: Path) -> None:
    g = _ring(3)
    g.nodes["1"]["x"] = "east"
    with pytest.raises(MapError, match="non-numeric x/y"):
        load_graphml(_write(tmp_path, g))


def test_graphml_edge_without_length(tmp_path: Path) -> None:
    g = _ring(3)
    g.add_edge("0", "2")
    with pytest.raises(MapError, match="no length"):
        load_graphml(_write(tmp_path, g))


def test_graphml_two_disconnected_halves(tmp_path: Path) -> None:
    g = nx.compose(_ring(4), _ring(4, offset=10))
    with pytest.raises(MapError, match="not strongly connected enough.*4 of 8"):
        load_graphml(_write(tmp_path, g))


def test_graphml_keeps_largest_component_and_fastest_parallel_edge(tmp_path: Path) -> None:
    g = nx.compose(_ring(5), _ring(2, offset=10))
    g.add_edge("0", "1", length="50", highway="residential")  # parallel, shorter -> kept
    g.add_edge("4", "10", length="30")  # one-way bridge: node 10/11 not strongly connected
    m = load_graphml(_write(tmp_path, g, "small.graphml"))
    assert m.name == "small"
    assert m.nodes == ["0", "1", "2", "3", "4"]
    assert m.graph.edges["0", "1"]["length"] == 50.0


# --- clusters -------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 4, 7])
def test_clusters_cover_every_node(any_map: RoadMap, k: int) -> None:
    clusters = make_clusters(any_map, k=k, seed=0)
    assert isinstance(clusters, Clusters) and clusters.k == k
    assert sorted(clusters.gdf["cluster"]) == list(range(k)) and clusters.gdf.crs is None
    members = [clusters.nodes_in(c) for c in range(k)]
    assert sorted(itertools.chain.from_iterable(members)) == any_map.nodes  # exactly once each
    assert all(members)
    for c, nodes in enumerate(members):
        for node in nodes[:: max(1, len(nodes) // 30)]:
            assert clusters.cluster_of_node(node) == c
            assert clusters.cluster_of_xy(*any_map.xy(node)) == c
            assert clusters.gdf.geometry.iloc[c].covers(Point(any_map.xy(node)))
    if k == 4:
        sizes = [len(m) for m in members]
        assert min(sizes) > len(any_map.nodes) / k / 3  # k-means: roughly balanced


def test_clusters_are_deterministic_and_cached(city: RoadMap) -> None:
    a = make_clusters(city, k=5, seed=1)
    assert make_clusters(city, k=5, seed=1) is a
    fresh = make_clusters(generate_city(0), k=5, seed=1)  # another object, same map
    assert fresh is not a
    assert [fresh.nodes_in(c) for c in range(5)] == [a.nodes_in(c) for c in range(5)]
    assert all(fresh.gdf.geometry.geom_equals_exact(a.gdf.geometry, 1e-9))


def test_clusters_reject_bad_k(city: RoadMap) -> None:
    with pytest.raises(ValueError, match="k must be"):
        make_clusters(city, k=0)
    with pytest.raises(ValueError, match="k must be"):
        make_clusters(city, k=len(city.nodes) + 1)


def test_clusters_outside_cells_go_to_nearest_seed(city: RoadMap) -> None:
    clusters = make_clusters(city, k=4)
    far = clusters.cluster_of_xy(1e6, 1e6)
    dists = [math.dist((1e6, 1e6), clusters.centre(c)) for c in range(4)]
    assert far == dists.index(min(dists))


_CITY_CLUSTERS = make_clusters(load_map("builtin"), k=6, seed=2)
_MINX, _MINY, _MAXX, _MAXY = load_map("builtin").bounds


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=_MINX, max_value=_MAXX),
    st.floats(min_value=_MINY, max_value=_MAXY),
)
def test_cluster_of_xy_is_the_containing_cell(x: float, y: float) -> None:
    c = _CITY_CLUSTERS.cluster_of_xy(x, y)
    cells = _CITY_CLUSTERS.gdf.geometry
    assert cells.iloc[c].covers(Point(x, y))
    assert c == min(i for i, cell in enumerate(cells) if cell.covers(Point(x, y)))


# --- travel times ---------------------------------------------------------------------------------


def test_travel_times_basic(any_map: RoadMap) -> None:
    tt = TravelTimes(any_map)
    a, b, c = _sample(any_map, 3, seed=5)
    assert tt.time_s(a, a) == 0.0
    route = tt.route(a, b)
    assert route[0] == a and route[-1] == b
    assert tt.route(a, a) == [a]
    expected = sum(any_map.graph.edges[u, v]["travel_time"] for u, v in itertools.pairwise(route))
    assert tt.time_s(a, b) == pytest.approx(expected)
    assert tt.route_length_m(route) == pytest.approx(
        nx.path_weight(any_map.graph, route, weight="length")
    )
    assert tt.route_length_m(route) >= any_map.distance_m(a, b) * 0.99
    assert tt.times_to(b)[a] == pytest.approx(tt.time_s(a, b))
    assert tt.times_from(a)[c] == pytest.approx(tt.time_s(a, c))


def test_travel_times_agree_with_networkx(any_map: RoadMap) -> None:
    tt = TravelTimes(any_map)
    nodes = _sample(any_map, 12, seed=7)
    for a, b in itertools.permutations(nodes[:6], 2):
        ref = nx.shortest_path_length(any_map.graph, a, b, weight="travel_time")
        assert tt.time_s(a, b) == pytest.approx(ref)
    for a, b, c in itertools.permutations(nodes, 3):
        assert tt.time_s(a, c) <= tt.time_s(a, b) + tt.time_s(b, c) + 1e-9


def test_travel_times_errors(city: RoadMap) -> None:
    tt = TravelTimes(city)
    node = city.nodes[0]
    for call in (
        lambda: tt.time_s(node, "no-such-node"),
        lambda: tt.times_from("no-such-node"),
        lambda: tt.times_to("no-such-node"),
        lambda: tt.route("no-such-node", node),
    ):
        with pytest.raises(KeyError, match="not on map"):
            call()
    with pytest.raises(ValueError, match="no road"):
        tt.route_length_m([node, node + "x"])


def test_times_from_returns_a_copy(city: RoadMap) -> None:
    tt = TravelTimes(city)
    a, b = _sample(city, 2)
    tt.times_from(a)[b] = -1.0
    assert tt.time_s(a, b) > 0

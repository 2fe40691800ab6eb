"""Any OSMnx GraphML must load (hand-written files), and the packaged Bengaluru extract.

The files below are written by hand in the layout OSMnx's `save_graphml` produces: every
key declared as a string, a MultiDiGraph with edge keys, values such as "50 mph",
"['30', '50']", "yes" / "True" for `oneway`, WKT geometries.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import math
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from fleetbid.maps import MapError, RoadMap, TravelTimes, load_graphml, load_map
from fleetbid.maps.paper import PACKAGED_DENSE

ROOT = Path(__file__).resolve().parents[1]
# ../shared/maps next to the repository; FLEETBID_SHARED_MAPS overrides it (git worktrees).
SHARED = Path(os.environ.get("FLEETBID_SHARED_MAPS", ROOT.parent / "shared" / "maps"))
SHARED_BENGALURU = SHARED / "central_bengaluru.graphml"
PACKAGED = ROOT / "fleetbid" / "maps" / PACKAGED_DENSE
BENGALURU_SHA256 = "36d53a65a8ca286036e4a65de7ad295f29bbacf95ca8602a93150346ebbd17cf"

HEADER = """<?xml version='1.0' encoding='utf-8'?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns
  http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">
<key id="d0" for="graph" attr.name="crs" attr.type="string"/>
<key id="d1" for="node" attr.name="y" attr.type="string"/>
<key id="d2" for="node" attr.name="x" attr.type="string"/>
<key id="d3" for="node" attr.name="street_count" attr.type="string"/>
<key id="d4" for="node" attr.name="lon" attr.type="string"/>
<key id="d5" for="node" attr.name="lat" attr.type="string"/>
<key id="d6" for="edge" attr.name="osmid" attr.type="string"/>
<key id="d7" for="edge" attr.name="oneway" attr.type="string"/>
<key id="d8" for="edge" attr.name="highway" attr.type="string"/>
<key id="d9" for="edge" attr.name="maxspeed" attr.type="string"/>
<key id="d10" for="edge" attr.name="length" attr.type="string"/>
<key id="d11" for="edge" attr.name="lanes" attr.type="string"/>
<key id="d12" for="edge" attr.name="geometry" attr.type="string"/>
<key id="d13" for="edge" attr.name="from" attr.type="string"/>
<key id="d14" for="edge" attr.name="to" attr.type="string"/>
"""

# A one-way-heavy block: the loop 1 -> 2 -> 3 -> 4 -> 1 is all one-way; 5 hangs off 4 by a
# two-way street; 6 is a one-way dead end (4 -> 6 only) and 7 a one-way entry (7 -> 1 only),
# so neither is strongly connected to the rest.
DIRECTED = HEADER + """<graph edgedefault="directed">
<data key="d0">epsg:4326</data>
<node id="1"><data key="d1">12.9700</data><data key="d2">77.6000</data>
  <data key="d3">3</data></node>
<node id="2"><data key="d1">12.9700</data><data key="d2">77.6010</data>
  <data key="d3">2</data></node>
<node id="3"><data key="d1">12.9710</data><data key="d2">77.6010</data>
  <data key="d3">2</data></node>
<node id="4"><data key="d1">12.9710</data><data key="d2">77.6000</data>
  <data key="d3">4</data></node>
<node id="5"><data key="d1">12.9720</data><data key="d2">77.6000</data>
  <data key="d3">1</data></node>
<node id="6"><data key="d1">12.9710</data><data key="d2">77.5990</data>
  <data key="d3">1</data></node>
<node id="7"><data key="d1">12.9690</data><data key="d2">77.6000</data>
  <data key="d3">1</data></node>
<edge source="1" target="2" id="0"><data key="d6">101</data><data key="d7">True</data>
  <data key="d8">primary</data><data key="d9">50 mph</data><data key="d10">108.6</data>
  <data key="d11">['2', '3']</data>
  <data key="d12">LINESTRING (77.6 12.97, 77.6005 12.97, 77.601 12.97)</data></edge>
<edge source="1" target="2" id="1"><data key="d6">[102, 103]</data>
  <data key="d7">yes</data><data key="d8">residential</data><data key="d10">150.0</data>
  </edge>
<edge source="2" target="3" id="0"><data key="d6">104</data><data key="d7">True</data>
  <data key="d8">['secondary', 'tertiary']</data><data key="d9">['30', '50']</data>
  <data key="d10">111.2</data></edge>
<edge source="3" target="4" id="0"><data key="d6">105</data><data key="d7">yes</data>
  <data key="d8">residential</data><data key="d9">none</data><data key="d10">108.6</data>
  </edge>
<edge source="4" target="1" id="0"><data key="d6">106</data><data key="d7">1</data>
  <data key="d8">tertiary_link</data><data key="d9">signals</data>
  <data key="d10">111.2</data></edge>
<edge source="4" target="5" id="0"><data key="d6">107</data><data key="d7">False</data>
  <data key="d8">service</data><data key="d10">111.2</data></edge>
<edge source="5" target="4" id="0"><data key="d6">107</data><data key="d7">False</data>
  <data key="d8">service</data><data key="d10">111.2</data></edge>
<edge source="4" target="6" id="0"><data key="d6">108</data><data key="d7">yes</data>
  <data key="d8">unclassified</data><data key="d10">108.6</data></edge>
<edge source="7" target="1" id="0"><data key="d6">109</data><data key="d7">True</data>
  <data key="d8">living_street</data><data key="d9">20 km/h</data>
  <data key="d10">111.2</data></edge>
<edge source="3" target="3" id="0"><data key="d6">110</data><data key="d7">False</data>
  <data key="d8">service</data><data key="d10">30.0</data></edge>
</graph>
</graphml>
"""

# ox.get_undirected: one edge per street; a one-way street keeps its direction in from/to.
UNDIRECTED = HEADER + """<graph edgedefault="undirected">
<data key="d0">epsg:4326</data>
<node id="a"><data key="d1">12.97</data><data key="d2">77.600</data></node>
<node id="b"><data key="d1">12.97</data><data key="d2">77.601</data></node>
<node id="c"><data key="d1">12.971</data><data key="d2">77.601</data></node>
<edge source="a" target="b"><data key="d7">False</data><data key="d10">108.6</data>
  <data key="d13">a</data><data key="d14">b</data></edge>
<edge source="b" target="c"><data key="d7">False</data><data key="d10">111.2</data></edge>
<edge source="a" target="c"><data key="d7">True</data><data key="d10">150.0</data>
  <data key="d13">c</data><data key="d14">a</data></edge>
</graph>
</graphml>
"""

# ox.project_graph: x/y in metres (UTM 43N), the original lon/lat kept on the nodes.
PROJECTED = HEADER + """<graph edgedefault="directed">
<data key="d0">epsg:32643</data>
<node id="1"><data key="d1">1434093.1</data><data key="d2">781302.4</data>
  <data key="d4">77.6</data><data key="d5">12.97</data></node>
<node id="2"><data key="d1">1434094.2</data><data key="d2">781410.9</data>
  <data key="d4">77.601</data><data key="d5">12.97</data></node>
<edge source="1" target="2"><data key="d10">108.6</data></edge>
<edge source="2" target="1"><data key="d10">108.6</data></edge>
</graph>
</graphml>
"""

# A one-way chain: no two nodes reach each other.
CHAIN = HEADER + """<graph edgedefault="directed">
<node id="1"><data key="d1">12.97</data><data key="d2">77.600</data></node>
<node id="2"><data key="d1">12.97</data><data key="d2">77.601</data></node>
<node id="3"><data key="d1">12.97</data><data key="d2">77.602</data></node>
<edge source="1" target="2"><data key="d7">yes</data><data key="d10">108.6</data></edge>
<edge source="2" target="3"><data key="d7">yes</data><data key="d10">108.6</data></edge>
</graph>
</graphml>
"""


def _file(tmp_path: Path, text: str, name: str = "osmnx.graphml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture()
def block(tmp_path: Path) -> RoadMap:
    return load_graphml(_file(tmp_path, DIRECTED))


# --- any OSMnx GraphML ------------------------------------------------------------------------


def test_one_way_heavy_strings_everywhere_loads(block: RoadMap) -> None:
    g = block.graph
    assert block.nodes == ["1", "2", "3", "4", "5"]
    # One-way streets stay one-way: the edges are the driving directions, whatever `oneway`
    # says ("True", "yes", "1"); the two-way street has both.
    assert g.has_edge("1", "2") and not g.has_edge("2", "1")
    assert g.has_edge("4", "1") and not g.has_edge("1", "4")
    assert g.has_edge("4", "5") and g.has_edge("5", "4")
    assert not g.has_edge("3", "3")  # self-loop dropped
    kmh = {(u, v): d["speed"] * 3.6 for u, v, d in g.edges(data=True)}
    assert kmh["1", "2"] == pytest.approx(50 * 1.609344)  # "50 mph" beats the parallel edge
    assert g.edges["1", "2"]["length"] == pytest.approx(108.6)
    assert kmh["2", "3"] == pytest.approx(40)  # "['30', '50']": mean
    assert kmh["3", "4"] == pytest.approx(25)  # "none": residential default
    assert kmh["4", "1"] == pytest.approx(35)  # "signals": tertiary_link default
    tt = TravelTimes(block)
    for a in block.nodes:
        for b in block.nodes:
            assert math.isfinite(tt.time_s(a, b))


def test_nodes_outside_the_strong_component_are_dropped_and_explained(block: RoadMap) -> None:
    assert block.unreachable == {"6", "7"}
    assert not block.has_node("6")
    assert "strongly connected" in block.missing("6")
    assert block.missing("42") == f"node '42' is not on map {block.name}"
    with pytest.raises(KeyError, match="strongly connected"):
        TravelTimes(block).time_s("1", "6")
    # A point right on the dead end snaps to the nearest node that can be reached (4).
    lon, lat = 77.5990, 12.9710
    assert block.nearest_node(lat, lon) == "4"


def test_requests_for_unreachable_nodes_are_refused(block: RoadMap) -> None:
    from fleetbid.core.scenario import Request
    from fleetbid.maps import make_clusters
    from fleetbid.policies import make_policy
    from fleetbid.service.script import Place
    from fleetbid.sim import simulate

    with pytest.raises(MapError, match="'6'"):
        Place(node="6").resolve(block)
    assert Place(lat=12.9710, lon=77.5990).resolve(block) == "4"
    clusters = make_clusters(block, 2, 0)
    with pytest.raises(ValueError, match="not on map"):
        simulate(block, clusters, make_policy("fifo-cluster"), [Request("r", 1.0, "6", "1")],
                 ["1"])


def test_undirected_graph_is_two_way_except_oneway_from_to(tmp_path: Path) -> None:
    m = load_graphml(_file(tmp_path, UNDIRECTED))
    g = m.graph
    assert sorted(g.edges) == [("a", "b"), ("b", "a"), ("b", "c"), ("c", "a"), ("c", "b")]


def test_projected_graph_uses_lon_lat(tmp_path: Path) -> None:
    m = load_graphml(_file(tmp_path, PROJECTED))
    assert m.lonlat("2") == pytest.approx((77.601, 12.97))
    assert m.distance_m("1", "2") == pytest.approx(108.5, abs=1)


def test_projected_graph_without_lon_lat_is_refused(tmp_path: Path) -> None:
    text = PROJECTED.replace('<data key="d4">77.6</data>', "")
    with pytest.raises(MapError, match="outside lon/lat range"):
        load_graphml(_file(tmp_path, text))


def test_no_strong_component_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(MapError, match="not strongly connected enough.*1 of 3"):
        load_graphml(_file(tmp_path, CHAIN))


@pytest.mark.parametrize(("suffix", "compress"), [
    (".xz", lzma.compress), (".gz", gzip.compress), (".bz2", bz2.compress)])
def test_compressed_graphml_loads(tmp_path: Path, suffix: str, compress) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"block.graphml{suffix}"
    path.write_bytes(compress(DIRECTED.encode()))
    m = load_graphml(path)
    assert m.name == "block"
    assert sorted(m.graph.edges) == sorted(load_graphml(_file(tmp_path, DIRECTED)).graph.edges)
    assert load_map(str(path)) is load_map(str(path))


def test_corrupt_compressed_file_is_a_map_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.graphml.xz"
    path.write_bytes(lzma.compress(DIRECTED.encode())[:100])
    with pytest.raises(MapError, match="cannot read map file"):
        load_graphml(path)


# --- the packaged Bengaluru extract -----------------------------------------------------------


def test_packaged_bengaluru_is_the_shared_file_byte_for_byte() -> None:
    data = lzma.decompress(PACKAGED.read_bytes())
    assert hashlib.sha256(data).hexdigest() == BENGALURU_SHA256
    assert "OpenStreetMap contributors" in (PACKAGED.parent / "README.md").read_text()


def test_packaged_bengaluru_matches_the_shared_map() -> None:
    if not SHARED_BENGALURU.is_file():
        pytest.skip(f"shared test map not available: {SHARED_BENGALURU} "
                    "(set FLEETBID_SHARED_MAPS to its folder)")
    packaged, shared = load_map("dense"), load_map(f"dense:{SHARED_BENGALURU}")
    assert packaged.name == shared.name == "central_bengaluru"
    assert packaged.graph.number_of_nodes() == shared.graph.number_of_nodes() == 2657
    assert packaged.graph.number_of_edges() == shared.graph.number_of_edges()
    raw = nx.read_graphml(SHARED_BENGALURU)
    assert raw.number_of_nodes() == 2657 and raw.number_of_edges() == 6401


def test_dense_map_loads_outside_the_repository(tmp_path: Path) -> None:
    code = ("from fleetbid.maps import load_map; m = load_map('dense'); "
            "print(m.name, m.graph.number_of_nodes(), m.graph.number_of_edges())")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, nodes, edges = proc.stdout.split()
    assert name == "central_bengaluru" and int(nodes) == 2657 and int(edges) > 6000


def test_experiment_paper_defaults_to_the_packaged_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command's wiring only: the sweep is replaced, the map really loads, from tmp_path.
    import fleetbid.experiment.sweep as sweep
    from fleetbid.cli import main

    seen: dict[str, RoadMap] = {}

    def fake_sweep(settings, say):  # type: ignore[no-untyped-def]
        seen.update({label: load_map(spec) for label, spec in settings.maps.items()})
        return [sweep.Point(label, pol, 10, 0, 60.0, 90.0, 0.3, 10, 0, None, 0.0, "sim")
                for label in settings.maps for pol in settings.policies]

    monkeypatch.setattr(sweep, "sim_sweep", fake_sweep)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["experiment", "paper", "--out", str(out), "--fast", "--quick",
                 "--no-latency", "--json"]) == 0
    assert seen["dense"].name == "central_bengaluru"
    assert (out / "report.md").is_file()

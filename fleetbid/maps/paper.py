"""The two maps of the paper's evaluation: a dense congested city and a sparse suburb.

- dense: an OSM GraphML city (central Bengaluru, shipped in the package: data/README.md for
  its ODbL attribution; any other GraphML path may be given), speeds from `maxspeed` or the
  road class, capped at DENSE_CAP_KMH (Bengaluru's urban limit in the paper), times
  CONGESTION. The factor models heavy traffic: with it the mean edge speed of central
  Bengaluru is about 20 km/h (28 km/h free flow), in line with the ~20 km/h (about 28 min
  per 10 km) that traffic indices report for the city centre.
- sparse: the generated Tysons-Corner-like suburb (suburb.py), 72 km/h arterials, free flow.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from fleetbid.maps.graphml import load_graphml
from fleetbid.maps.roadmap import RoadMap
from fleetbid.maps.suburb import generate_suburb

DENSE_CAP_KMH = 50.0
CONGESTION = 0.7
SPARSE_CAP_KMH = 72.0  # the suburb's arterials; its generator never exceeds it
# Packaged (not read from ../shared/maps) so the experiment runs from any directory.
PACKAGED_DENSE = "data/central_bengaluru.graphml.xz"


def dense_map(path: str | os.PathLike[str] | None = None) -> RoadMap:
    """The dense city: the packaged central Bengaluru extract, or the GraphML at `path`."""
    if path is not None:
        return load_graphml(path, cap_kmh=DENSE_CAP_KMH, congestion=CONGESTION)
    # as_file: a real path even if the package is imported from a zip archive.
    with resources.as_file(resources.files("fleetbid.maps") / PACKAGED_DENSE) as packaged:
        return load_graphml(Path(packaged), cap_kmh=DENSE_CAP_KMH, congestion=CONGESTION)


def sparse_map(seed: int = 0) -> RoadMap:
    return generate_suburb(seed)

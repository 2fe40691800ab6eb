"""load_map: one entry point for "builtin" or a GraphML path, cached per process."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from fleetbid.maps.city import generate_city
from fleetbid.maps.graphml import load_graphml
from fleetbid.maps.roadmap import RoadMap

BUILTIN = "builtin"
SUBURB = "suburb"  # the generated sparse suburb (maps/suburb.py)
DENSE = "dense"  # the packaged central Bengaluru extract, with the paper's cap and congestion
DENSE_PREFIX = "dense:"  # "dense:PATH": a GraphML city with the paper's cap and congestion


def load_map(spec: str | os.PathLike[str] | None, seed: int = 0) -> RoadMap:
    """None or "builtin" -> the generated city for ``seed``; "suburb" -> the generated suburb;
    "dense" (or "dense:") -> the packaged central Bengaluru; "dense:PATH" -> a GraphML city
    with the paper's speed cap and congestion; anything else is a GraphML path (plain, or
    compressed .xz/.gz/.bz2).

    Several agents in one process share the same (read-only) RoadMap object.
    """
    if spec is None or spec == BUILTIN:
        return _cached(BUILTIN, seed)
    if spec == SUBURB:
        return _cached(SUBURB, seed)
    if spec in (DENSE, DENSE_PREFIX):
        return _cached(DENSE, 0)
    if isinstance(spec, str) and spec.startswith(DENSE_PREFIX):
        path = Path(spec[len(DENSE_PREFIX):]).expanduser().resolve()
        return _cached(DENSE_PREFIX + str(path), 0)
    # The seed does not affect a file map, so all seeds share one load.
    return _cached(str(Path(spec).expanduser().resolve()), 0)


@lru_cache(maxsize=16)
def _cached(spec: str, seed: int) -> RoadMap:
    from fleetbid.maps.paper import dense_map, sparse_map

    if spec == SUBURB:
        return sparse_map(seed)
    if spec == DENSE:
        return dense_map()
    if spec.startswith(DENSE_PREFIX):
        return dense_map(spec[len(DENSE_PREFIX):])
    return generate_city(seed) if spec == BUILTIN else load_graphml(spec)

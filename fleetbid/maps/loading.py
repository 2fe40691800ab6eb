"""load_map: one entry point for "builtin" or a GraphML path, cached per process."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from fleetbid.maps.city import generate_city
from fleetbid.maps.graphml import load_graphml
from fleetbid.maps.roadmap import RoadMap

BUILTIN = "builtin"


def load_map(spec: str | os.PathLike[str] | None, seed: int = 0) -> RoadMap:
    """None or "builtin" -> the generated city for ``seed``; anything else is a GraphML path.

    Several agents in one process share the same (read-only) RoadMap object.
    """
    if spec is None or spec == BUILTIN:
        return _cached(BUILTIN, seed)
    # The seed does not affect a file map, so all seeds share one load.
    return _cached(str(Path(spec).expanduser().resolve()), 0)


@lru_cache(maxsize=16)
def _cached(spec: str, seed: int) -> RoadMap:
    return generate_city(seed) if spec == BUILTIN else load_graphml(spec)

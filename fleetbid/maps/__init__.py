"""Road maps for fleetbid: loading (GraphML or a generated city), clusters, travel times.

Node ids are always ``str``; geometry is in projected metres (x, y), user input in lon/lat.
"""

from fleetbid.maps.city import generate_city
from fleetbid.maps.clusters import Clusters, make_clusters
from fleetbid.maps.errors import MapError
from fleetbid.maps.graphml import load_graphml
from fleetbid.maps.loading import load_map
from fleetbid.maps.roadmap import RoadMap
from fleetbid.maps.travel import TravelTimes

__all__ = [
    "Clusters",
    "MapError",
    "RoadMap",
    "TravelTimes",
    "generate_city",
    "load_graphml",
    "load_map",
    "make_clusters",
]

"""Local equirectangular projection between lon/lat degrees and metres.

Good to well under 1 % over a city, which is all fleetbid needs; it avoids a pyproj dependency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6371008.8  # mean Earth radius (IUGG)


@dataclass(frozen=True)
class LocalProjection:
    """x = R·Δlon·cos(lat0), y = R·Δlat, around the origin (lat0, lon0)."""

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    def to_xy(self, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], ...]:
        """Project lon/lat degrees (scalars or arrays) to metres (x, y)."""
        x = self._kx * np.radians(np.asarray(lon, dtype=float) - self.lon0)
        y = EARTH_RADIUS_M * np.radians(np.asarray(lat, dtype=float) - self.lat0)
        return x, y

    def to_lonlat(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], ...]:
        """Inverse of :meth:`to_xy`: metres to lon/lat degrees."""
        lon = self.lon0 + np.degrees(np.asarray(x, dtype=float) / self._kx)
        lat = self.lat0 + np.degrees(np.asarray(y, dtype=float) / EARTH_RADIUS_M)
        return lon, lat

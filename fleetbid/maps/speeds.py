"""Edge speeds from OSM tags: ``maxspeed`` when parseable, else a default per highway class."""

from __future__ import annotations

import re
from statistics import fmean
from typing import Any

KMH = 1 / 3.6  # km/h -> m/s
MPH = 0.44704  # mph -> m/s

# Urban free-flow guesses (km/h); fleetbid only needs relative speeds to be plausible.
HIGHWAY_KMH: dict[str, float] = {
    "motorway": 80.0,
    "trunk": 60.0,
    "primary": 50.0,
    "secondary": 40.0,
    "tertiary": 35.0,
    "residential": 25.0,
    "unclassified": 25.0,
    "living_street": 25.0,
    "service": 15.0,
}
DEFAULT_KMH = 25.0

_SPEED_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(mph|knots|km/h|kmh|kph)?", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-z_]+")


def tag_values(tag: Any) -> list[str]:
    """OSMnx writes multi-valued tags as a Python list repr, e.g. "['30', '50']"; split them."""
    if tag is None:
        return []
    if isinstance(tag, list | tuple):
        return [str(t) for t in tag]
    text = str(tag).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part.strip().strip("'\"") for part in re.split(r"[,;|]", text) if part.strip()]


def parse_maxspeed(tag: Any) -> float | None:
    """Mean of the parseable values of a maxspeed tag, in m/s; None if nothing usable."""
    speeds = []
    for value in tag_values(tag):
        match = _SPEED_RE.fullmatch(value.strip())
        if not match:
            continue  # "walk", "none", "IN:urban" ...: fall back to the highway class
        number, unit = float(match.group(1)), (match.group(2) or "km/h").lower()
        factor = MPH if unit == "mph" else 0.514444 if unit == "knots" else KMH
        if 0 < number <= 200:
            speeds.append(number * factor)
    return fmean(speeds) if speeds else None


def highway_speed(tag: Any) -> float:
    """Default speed (m/s) for a highway class; "*_link" counts as its parent class."""
    speeds = []
    for value in tag_values(tag):
        for word in _WORD_RE.findall(value):
            base = word.lower().removesuffix("_link")
            speeds.append(HIGHWAY_KMH.get(base, DEFAULT_KMH))
    return (fmean(speeds) if speeds else DEFAULT_KMH) * KMH


def edge_speed(
    attrs: dict[str, Any], cap_kmh: float | None = None, congestion: float = 1.0
) -> float:
    """Speed in m/s for an OSMnx edge attribute dict: maxspeed or the class default, capped at
    `cap_kmh` (a city-wide limit), then times `congestion` (1 = free flow)."""
    if not 0 < congestion <= 1:
        raise ValueError(f"congestion factor must be in (0, 1], got {congestion}")
    speed = parse_maxspeed(attrs.get("maxspeed"))
    speed = speed if speed is not None else highway_speed(attrs.get("highway"))
    if cap_kmh is not None:
        speed = min(speed, cap_kmh * KMH)
    return speed * congestion

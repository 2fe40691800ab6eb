"""Request scripts: CSV (header `at,from,to[,id]`) or JSON lines, one request per row.

`at` is simulated seconds after the script starts; `from`/`to` are "lat,lon" or road node
ids. Parsing never stops at a bad row: each is reported with its line number and the
others still run.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetbid.core.values import LATEST_START_S
from fleetbid.maps import MapError, RoadMap

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")  # ids become part of the auction id
CSV_COLUMNS = ("at", "from", "to")


class ScriptError(ValueError):
    """The whole script is unusable (unreadable, no header)."""


@dataclass(frozen=True)
class Place:
    """Where a passenger is: a road node, or a point to snap to the nearest one."""

    node: str | None = None
    lat: float | None = None
    lon: float | None = None

    def resolve(self, roadmap: RoadMap) -> str:
        """The road node; MapError when off the map or unknown."""
        if self.node is not None:
            if not roadmap.has_node(self.node):
                raise MapError(f"unknown node: {roadmap.missing(self.node)}")
            return self.node
        assert self.lat is not None and self.lon is not None
        return roadmap.nearest_node(self.lat, self.lon)

    def __str__(self) -> str:
        return self.node if self.node is not None else f"{self.lat},{self.lon}"


@dataclass(frozen=True)
class ScriptRow:
    line: int
    at: float
    source: Place
    destination: Place
    id: str | None = None


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Ride:
    """A script row resolved to road nodes."""

    line: int
    at: float
    source: str
    destination: str
    id: str | None = None


def parse_place(value: Any, what: str) -> Place:
    """ "lat,lon", a node id (string or integer), or a JSON [lat, lon] pair."""
    if isinstance(value, list) and len(value) == 2:
        value = f"{value[0]},{value[1]}"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: expected 'lat,lon' or a node id, got {value!r}")
    text = value.strip()
    if "," not in text:
        return Place(node=text)
    parts = text.split(",")
    try:
        lat, lon = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lat = lon = math.nan
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"{what}: {text!r} is not 'lat,lon'")
    return Place(lat=lat, lon=lon)


def parse_at(value: Any) -> float:
    try:
        at = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"at: {value!r} is not a number of seconds") from None
    if isinstance(value, bool) or not math.isfinite(at) or at < 0:
        raise ValueError(f"at: {value!r} must be a finite number of seconds >= 0")
    if at > LATEST_START_S:
        raise ValueError(f"at: {value!r} is later than the latest start, {LATEST_START_S:.0f} s "
                         "(one simulated week) after the script starts")
    return at


def parse_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not ID_PATTERN.match(text):
        raise ValueError(f"id: {text!r} must be 1-40 of letters, digits, _ . : -")
    return text


def make_row(line: int, fields: dict[str, Any]) -> ScriptRow:
    return ScriptRow(line, parse_at(fields.get("at")), parse_place(fields.get("from"), "from"),
                     parse_place(fields.get("to"), "to"), parse_id(fields.get("id")))


def _content_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are neither blank nor `#` comments."""
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def parse_csv(text: str) -> tuple[list[ScriptRow], list[BadRow]]:
    lines = _content_lines(text)
    if not lines:
        raise ScriptError("empty script")
    header_line, header_text = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    if any(c not in header for c in CSV_COLUMNS) or set(header) - {*CSV_COLUMNS, "id"} \
            or len(set(header)) != len(header):
        raise ScriptError(f"line {header_line}: header must be at,from,to[,id], "
                          f"got {header_text.strip()!r}")
    rows: list[ScriptRow] = []
    bad: list[BadRow] = []
    for number, line in lines[1:]:
        try:
            values = next(csv.reader([line]))
            if len(values) != len(header):
                raise ValueError(f"{len(values)} fields, expected {len(header)} "
                                 "(quote \"lat,lon\" points)")
            rows.append(make_row(number, dict(zip(header, values, strict=True))))
        except (ValueError, csv.Error) as exc:
            bad.append(BadRow(number, str(exc)))
    return rows, bad


def parse_jsonl(text: str) -> tuple[list[ScriptRow], list[BadRow]]:
    rows: list[ScriptRow] = []
    bad: list[BadRow] = []
    for number, line in _content_lines(text):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            unknown = set(record) - {*CSV_COLUMNS, "id"}
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
            rows.append(make_row(number, record))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            bad.append(BadRow(number, str(exc)))
    return rows, bad


def is_jsonl(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return True
    if suffix == ".csv":
        return False
    first = _content_lines(text)
    return bool(first) and first[0][1].lstrip().startswith("{")


def parse_script(path: Path) -> tuple[list[ScriptRow], list[BadRow]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read script {path}: {exc}") from None
    return parse_jsonl(text) if is_jsonl(path, text) else parse_csv(text)


def resolve(rows: list[ScriptRow], roadmap: RoadMap) -> tuple[list[Ride], list[BadRow]]:
    """Snap points and check nodes; rows that fail become BadRows."""
    rides: list[Ride] = []
    bad: list[BadRow] = []
    for row in rows:
        try:
            source = row.source.resolve(roadmap)
            destination = row.destination.resolve(roadmap)
        except MapError as exc:
            bad.append(BadRow(row.line, str(exc)))
            continue
        rides.append(Ride(row.line, row.at, source, destination, row.id))
    return rides, bad


def load_rides(path: Path, roadmap: RoadMap) -> tuple[list[Ride], list[BadRow]]:
    rows, bad = parse_script(path)
    rides, unresolved = resolve(rows, roadmap)
    return rides, sorted([*bad, *unresolved], key=lambda b: b.line)

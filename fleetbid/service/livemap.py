"""`fleetbid serve --web`: the live map, an aiohttp server on loopback (docs/monitoring.md).

The page (assets/, bundled: no CDN) draws the GeoJSON base layer on a canvas and follows
the announcement group through server-sent events: the server listens to the group like any
monitor and relays every announcement, after a snapshot of its board for a page that joins
late. A click on an auction fetches its conversation diagram, drawn from the serve's trace
by the `fleetbid trace` renderer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web

from fleetbid.maps.clusters import Clusters
from fleetbid.maps.roadmap import RoadMap
from fleetbid.protocol.announce import Announcement, encode
from fleetbid.service import geo
from fleetbid.service.board import Board
from fleetbid.tracing import formats
from fleetbid.tracing.reader import TraceError, load

log = logging.getLogger("fleetbid.web")

ASSETS = {"index.html": "text/html", "map.js": "text/javascript", "map.css": "text/css"}
QUEUE = 10_000  # announcements a slow page may lag behind before it is cut off


class LiveMap:
    def __init__(self, roadmap: RoadMap, clusters: Clusters, speed: float,
                 trace: str | None) -> None:
        self.roadmap, self.clusters, self.speed, self.trace = roadmap, clusters, speed, trace
        self.epoch = 0.0  # set once the fleet is ready
        self.board = Board()
        self.pages: set[asyncio.Queue[bytes | None]] = set()
        self.runner: web.AppRunner | None = None
        self._geojson: bytes | None = None

    # --- the stream -------------------------------------------------------------------------

    def on_news(self, news: Announcement) -> None:
        self.board.add(news)
        data = encode(news)
        for queue in list(self.pages):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:  # this page stopped reading: end its stream
                self.pages.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "auctions": [dataclasses.asdict(r) for r in self.board.rows()],
            "vehicles": [json.loads(encode(v)) for v in self.board.vehicles.values()],
            "stats": [json.loads(encode(s)) for s in self.board.stats.values()],
        }

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        self.pages.add(queue)
        try:
            snapshot = json.dumps(self.snapshot(), separators=(",", ":")).encode()
            await response.write(b"event: snapshot\ndata: " + snapshot + b"\n\n")
            while (data := await queue.get()) is not None:
                await response.write(b"data: " + data + b"\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.pages.discard(queue)
        return response

    # --- the page and its data ----------------------------------------------------------------

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in ASSETS:
            raise web.HTTPNotFound(text=f"no asset {name}")
        text = (resources.files("fleetbid.service") / "assets" / name).read_text("utf-8")
        return web.Response(text=text, content_type=ASSETS[name])

    async def geojson(self, request: web.Request) -> web.Response:
        if self._geojson is None:
            fc = await asyncio.to_thread(geo.feature_collection, self.roadmap, self.clusters)
            self._geojson = json.dumps(fc, separators=(",", ":")).encode()
        return web.Response(body=self._geojson, content_type="application/geo+json")

    async def config(self, request: web.Request) -> web.Response:
        nodes = await asyncio.to_thread(geo.nodes, self.roadmap)
        return web.json_response({"epoch": self.epoch, "speed": self.speed,
                                  "map": self.roadmap.name, "clusters": self.clusters.k,
                                  "traced": bool(self.trace), "nodes": nodes})

    async def diagram(self, request: web.Request) -> web.Response:
        auction_id = request.match_info["auction"]
        if not self.trace:
            raise web.HTTPNotFound(text="this serve does not trace: start it with --trace FILE "
                                        "or --web to see conversation diagrams")
        try:
            html = await asyncio.to_thread(self.render, auction_id)
        except TraceError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        if html is None:
            raise web.HTTPNotFound(text=f"no conversation {auction_id!r} in the trace yet")
        return web.Response(text=html, content_type="text/html")

    def render(self, auction_id: str) -> str | None:
        assert self.trace is not None
        trace = load([self.trace], lambda text: log.debug("trace: %s", text))
        conv = trace.conversation(auction_id)
        if conv is None:
            return None
        return formats.render("html", conv, conv.messages)

    # --- lifecycle --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.asset)
        app.router.add_get("/assets/{name}", self.asset)
        app.router.add_get("/map.geojson", self.geojson)
        app.router.add_get("/config.json", self.config)
        app.router.add_get("/events", self.events)
        app.router.add_get("/diagram/{auction}", self.diagram)
        return app

    async def start(self, host: str, port: int) -> str:
        self.runner = web.AppRunner(self.app(), shutdown_timeout=1.0, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    async def stop(self) -> None:
        for queue in list(self.pages):  # end the streams, or the server waits for them
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
